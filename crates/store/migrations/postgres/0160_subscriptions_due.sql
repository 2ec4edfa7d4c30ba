-- The background settler's question: which subscriptions' periods ended (viewer::subscriptions).
CREATE INDEX subscriptions_due ON subscriptions (status, current_period_end);

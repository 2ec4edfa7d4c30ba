-- The viewer platform (issue 11, part A): catalog metadata on channels (a catalog "stream" is a
-- channel), categories, audience profiles, blocks, subscriptions with their payments, viewing
-- sessions, saved streams and follows of creators. Everything that belongs to a user cascades
-- when the user is deleted (ARCHITECTURE.md, "Deleting a viewer account").
CREATE TABLE stream_categories (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    slug             TEXT NOT NULL,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    UNIQUE (organization_id, slug)
);

CREATE TABLE stream_catalog (
    channel_id       TEXT PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
    title            TEXT NOT NULL DEFAULT '',
    description      TEXT NOT NULL DEFAULT '',
    category_id      TEXT REFERENCES stream_categories(id) ON DELETE SET NULL,
    tags             TEXT NOT NULL DEFAULT '',
    access_level     TEXT NOT NULL DEFAULT 'public',
    content_rating   TEXT NOT NULL DEFAULT 'general',
    scheduled_start  BIGINT,
    featured         BIGINT NOT NULL DEFAULT 0,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE viewer_profiles (
    user_id             TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    preferences         TEXT NOT NULL DEFAULT '{}',
    profile_visibility  TEXT NOT NULL DEFAULT 'public',
    history_enabled     BIGINT NOT NULL DEFAULT 1,
    max_rating          TEXT NOT NULL DEFAULT 'adult',
    pin_hash            TEXT,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE viewer_blocks (
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    blocked_user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (user_id, blocked_user_id)
);

CREATE TABLE subscriptions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    plan                TEXT NOT NULL,
    status              TEXT NOT NULL,
    started_at          BIGINT NOT NULL,
    current_period_end  BIGINT NOT NULL,
    auto_renew          BIGINT NOT NULL DEFAULT 1,
    provider            TEXT NOT NULL,
    payment_method      TEXT NOT NULL DEFAULT '',
    canceled_at         BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX subscriptions_user ON subscriptions (user_id, created_at);

CREATE TABLE subscription_payments (
    id               TEXT PRIMARY KEY,
    subscription_id  TEXT REFERENCES subscriptions(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    plan             TEXT NOT NULL,
    amount_cents     BIGINT NOT NULL,
    status           TEXT NOT NULL,
    provider_ref     TEXT NOT NULL DEFAULT '',
    detail           TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL
);
CREATE INDEX subscription_payments_user ON subscription_payments (user_id, created_at);

-- One row per player session. user_id is NULL for anonymous viewers and for viewers whose
-- history is off: such sessions count towards viewer numbers and trending, never to a person.
CREATE TABLE viewing_sessions (
    id                 TEXT PRIMARY KEY,
    stream_id          TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id            TEXT REFERENCES users(id) ON DELETE CASCADE,
    started_at         BIGINT NOT NULL,
    last_heartbeat_at  BIGINT NOT NULL,
    ended_at           BIGINT,
    position_ms        BIGINT NOT NULL DEFAULT 0,
    watched_ms         BIGINT NOT NULL DEFAULT 0,
    quality            TEXT NOT NULL DEFAULT '',
    device             TEXT NOT NULL DEFAULT '',
    exit_reason        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX viewing_sessions_stream ON viewing_sessions (stream_id, last_heartbeat_at);
CREATE INDEX viewing_sessions_user ON viewing_sessions (user_id, started_at);
CREATE INDEX viewing_sessions_recent ON viewing_sessions (last_heartbeat_at);

CREATE TABLE saved_streams (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    stream_id   TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, stream_id)
);

CREATE TABLE creator_follows (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    creator_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, creator_id)
);

-- In-app notifications: one row per recipient (alerts delivered to an organization's staff, …).
CREATE TABLE notifications (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    severity         TEXT NOT NULL,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    subject          TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    read_at          BIGINT
);
CREATE INDEX notifications_user ON notifications (user_id, id);

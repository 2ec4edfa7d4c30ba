-- Viewer platform, social part: live chat per stream (a stream is a channel), chat restrictions
-- (timeouts and bans), likes, engagement events, reports and the moderation actions taken.
CREATE TABLE chat_messages (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    channel_id       TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    display_name     TEXT NOT NULL,
    body             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    deleted_at       BIGINT,
    deleted_by       TEXT
);
CREATE INDEX chat_messages_channel ON chat_messages (channel_id, id);

CREATE TABLE chat_settings (
    channel_id         TEXT PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
    organization_id    TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    slow_mode_seconds  BIGINT NOT NULL DEFAULT 0,
    updated_by         TEXT,
    updated_at         BIGINT NOT NULL
);

-- A timeout (until set) or a ban (until NULL) of a user; channel_id '*' covers every stream
-- of the organization.
CREATE TABLE chat_restrictions (
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    channel_id       TEXT NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    until            BIGINT,
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX chat_restrictions_user ON chat_restrictions (organization_id, user_id);

CREATE TABLE stream_likes (
    channel_id       TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);

-- Engagement events for analytics: like, unlike, chat_message, report.
CREATE TABLE engagement_events (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    channel_id       TEXT,
    user_id          TEXT,
    kind             TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX engagement_events_channel ON engagement_events (channel_id, created_at);

CREATE TABLE moderation_reports (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    reporter_id      TEXT REFERENCES users(id) ON DELETE SET NULL,
    target_type      TEXT NOT NULL,
    target_id        TEXT NOT NULL,
    channel_id       TEXT,
    target_user_id   TEXT,
    excerpt          TEXT NOT NULL DEFAULT '',
    reason           TEXT NOT NULL,
    details          TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    moderator_id     TEXT,
    action           TEXT,
    note             TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    reviewed_at      BIGINT,
    resolved_at      BIGINT
);
CREATE INDEX moderation_reports_org ON moderation_reports (organization_id, status, id);

CREATE TABLE moderation_actions (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    moderator_id     TEXT,
    action           TEXT NOT NULL,
    channel_id       TEXT,
    target_type      TEXT NOT NULL,
    target_id        TEXT NOT NULL,
    target_user_id   TEXT,
    reason           TEXT NOT NULL DEFAULT '',
    duration_seconds BIGINT,
    report_id        TEXT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX moderation_actions_org ON moderation_actions (organization_id, id);

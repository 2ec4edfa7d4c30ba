-- Restream destinations and the streaming sessions that push a channel to them.
CREATE TABLE destinations (
    id                 TEXT PRIMARY KEY,
    organization_id    TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    owner_id           TEXT REFERENCES users(id) ON DELETE SET NULL,
    name               TEXT NOT NULL,
    platform           TEXT NOT NULL,
    rtmp_url           TEXT NOT NULL,
    stream_key_sealed  TEXT NOT NULL,
    stream_key_last4   TEXT NOT NULL,
    enabled            BIGINT NOT NULL DEFAULT 1,
    auto_start         BIGINT NOT NULL DEFAULT 0,
    preset_id          TEXT,
    version            BIGINT NOT NULL DEFAULT 1,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX destinations_org ON destinations (organization_id, id);

CREATE TABLE streaming_sessions (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    channel_id       TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    started_by       TEXT,
    started_at       BIGINT NOT NULL,
    ended_at         BIGINT,
    end_reason       TEXT
);
CREATE INDEX streaming_sessions_org ON streaming_sessions (organization_id, started_at);
CREATE INDEX streaming_sessions_channel ON streaming_sessions (channel_id, started_at);

-- Per destination of a session: what it delivered.
CREATE TABLE session_destinations (
    session_id         TEXT NOT NULL REFERENCES streaming_sessions(id) ON DELETE CASCADE,
    destination_id     TEXT NOT NULL,
    destination_name   TEXT NOT NULL,
    platform           TEXT NOT NULL,
    started_at         BIGINT NOT NULL,
    ended_at           BIGINT,
    bytes_sent         BIGINT NOT NULL DEFAULT 0,
    connected_ms       BIGINT NOT NULL DEFAULT 0,
    reconnects         BIGINT NOT NULL DEFAULT 0,
    last_error         TEXT,
    PRIMARY KEY (session_id, destination_id)
);

-- The error log of a session.
CREATE TABLE session_events (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES streaming_sessions(id) ON DELETE CASCADE,
    at              BIGINT NOT NULL,
    destination_id  TEXT,
    kind            TEXT NOT NULL,
    message         TEXT NOT NULL
);
CREATE INDEX session_events_session ON session_events (session_id, at);

-- A channel is one live stream; its inputs carry publish keys (hashed for lookup, sealed with the
-- master key for reveal, last 4 characters for display).
CREATE TABLE channels (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    owner_id         TEXT REFERENCES users(id) ON DELETE SET NULL,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    visibility       TEXT NOT NULL DEFAULT 'private',
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX channels_org ON channels (organization_id, created_at);

CREATE TABLE channel_inputs (
    id                 TEXT PRIMARY KEY,
    channel_id         TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    role               TEXT NOT NULL,
    protocol           TEXT NOT NULL,
    publish_key_hash   TEXT NOT NULL UNIQUE,
    publish_key_sealed TEXT NOT NULL,
    publish_key_last4  TEXT NOT NULL,
    enabled            BIGINT NOT NULL DEFAULT 1,
    created_at         BIGINT NOT NULL,
    UNIQUE (channel_id, role)
);

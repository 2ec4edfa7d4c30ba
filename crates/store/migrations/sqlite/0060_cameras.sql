-- IP cameras: each is backed by a channel (its RTMP input carries the camera's publish key).
CREATE TABLE cameras (
    id                TEXT PRIMARY KEY,
    organization_id   TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    channel_id        TEXT NOT NULL UNIQUE REFERENCES channels(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    brand             TEXT NOT NULL DEFAULT '',
    model             TEXT NOT NULL DEFAULT '',
    serial_number     TEXT NOT NULL DEFAULT '',
    location          TEXT NOT NULL DEFAULT '',
    tags              TEXT NOT NULL DEFAULT '',
    pull_url_sealed   TEXT,
    recording_policy  TEXT NOT NULL DEFAULT 'off',
    enabled           BIGINT NOT NULL DEFAULT 1,
    version           BIGINT NOT NULL DEFAULT 1,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX cameras_org ON cameras (organization_id, id);
CREATE UNIQUE INDEX cameras_serial ON cameras (organization_id, serial_number) WHERE serial_number <> '';

-- Recording settings per channel, and one row per recording file (seed 001 "Recording Flow",
-- "Multi-Tier Storage System"). A recording keeps its channel id (and stays listed to the
-- organization's administrators) after the channel is deleted: the file is still there.
CREATE TABLE recording_settings (
    channel_id       TEXT PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
    enabled          BIGINT NOT NULL DEFAULT 0,
    segment_minutes  BIGINT NOT NULL DEFAULT 60,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE recordings (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    channel_id       TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    ended_at         BIGINT,
    duration_ms      BIGINT NOT NULL DEFAULT 0,
    size_bytes       BIGINT NOT NULL DEFAULT 0,
    -- hot | warm | cold
    tier             TEXT NOT NULL DEFAULT 'hot',
    -- relative to the tier's root, `/`-separated
    path             TEXT NOT NULL,
    -- recording | complete | failed
    status           TEXT NOT NULL,
    error            TEXT,
    discontinuities  BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX recordings_org ON recordings (organization_id, id);
CREATE INDEX recordings_channel ON recordings (channel_id, started_at);
CREATE INDEX recordings_status ON recordings (status);

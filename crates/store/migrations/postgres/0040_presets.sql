-- Custom encoding presets of an organization (seed 000 "StreamingPresets Table"). Built-in
-- presets ship in the binary and are not stored. Settings are plain columns: the video
-- settings, the audio settings and the advanced ones (keyframe interval, profile, B-frames,
-- rate control, buffer, encoder speed).
CREATE TABLE presets (
    id                  TEXT PRIMARY KEY,
    organization_id     TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    platform            TEXT NOT NULL,
    allow_480p          BIGINT NOT NULL DEFAULT 0,
    video_codec         TEXT NOT NULL,
    video_profile       TEXT NOT NULL,
    width               BIGINT NOT NULL,
    height              BIGINT NOT NULL,
    fps                 BIGINT NOT NULL,
    video_bitrate_kbps  BIGINT NOT NULL,
    keyframe_interval_s BIGINT NOT NULL,
    b_frames            BIGINT NOT NULL,
    rate_control        TEXT NOT NULL,
    buffer_kbps         BIGINT,
    speed               TEXT NOT NULL,
    audio_codec         TEXT NOT NULL,
    audio_bitrate_kbps  BIGINT NOT NULL,
    sample_rate         BIGINT NOT NULL,
    channels            BIGINT NOT NULL,
    created_by          TEXT REFERENCES users(id) ON DELETE SET NULL,
    version             BIGINT NOT NULL DEFAULT 1,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);
CREATE INDEX presets_org_platform ON presets (organization_id, platform, id);

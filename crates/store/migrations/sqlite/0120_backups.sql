-- Backups (issue #10): one row per encrypted snapshot file under {data_dir}/backups/. A row is
-- written only after its file is complete and fsynced, so a listed backup always has a whole file.
-- `row_counts` is JSON: rows of the organization per entity type at the time of the snapshot.
CREATE TABLE backups (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'ready',
    file_name        TEXT NOT NULL,
    size_bytes       BIGINT NOT NULL,
    sha256           TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    format_version   BIGINT NOT NULL,
    row_counts       TEXT NOT NULL DEFAULT '{}',
    created_by       TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX backups_org ON backups (organization_id, created_at);

-- The scheduled backup of an organization: taken daily at `hour_utc`, kept by kind for the given
-- number of days (seed 002: daily 7, weekly 30, monthly 365).
CREATE TABLE backup_schedules (
    organization_id  TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    enabled          BIGINT NOT NULL DEFAULT 0,
    hour_utc         BIGINT NOT NULL DEFAULT 3,
    daily_days       BIGINT NOT NULL DEFAULT 7,
    weekly_days      BIGINT NOT NULL DEFAULT 30,
    monthly_days     BIGINT NOT NULL DEFAULT 365,
    last_run_day     TEXT,
    updated_at       BIGINT NOT NULL
);

-- Alerts raised by Lunora's own rules, and webhooks that receive them.
CREATE TABLE alerts (
    id                TEXT PRIMARY KEY,
    organization_id   TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    rule              TEXT NOT NULL,
    severity          TEXT NOT NULL,
    subject           TEXT NOT NULL,
    message           TEXT NOT NULL,
    state             TEXT NOT NULL,
    raised_at         BIGINT NOT NULL,
    acknowledged_at   BIGINT,
    acknowledged_by   TEXT,
    resolved_at       BIGINT
);
CREATE INDEX alerts_org_state ON alerts (organization_id, state, raised_at);
CREATE UNIQUE INDEX alerts_open ON alerts (organization_id, rule, subject) WHERE resolved_at IS NULL;

CREATE TABLE webhooks (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    url              TEXT NOT NULL,
    secret_sealed    TEXT NOT NULL,
    enabled          BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL
);
CREATE INDEX webhooks_org ON webhooks (organization_id);

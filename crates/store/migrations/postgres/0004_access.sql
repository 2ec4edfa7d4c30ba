-- Identity and access: organisation policies, superadmins, MFA, password history, one-time
-- e-mail links, invitations, API tokens, the audit log and the e-mail outbox.
-- Flags are BIGINT 0/1 or nullable unix-ms timestamps, so the DDL is the same on both databases.

-- `staff_mfa`: 'required' or 'optional'; NULL follows the server default (auth.staff_mfa).
-- `ip_allowlist`: comma-separated addresses or CIDR blocks; empty allows every address.
ALTER TABLE organizations ADD COLUMN staff_mfa TEXT;
ALTER TABLE organizations ADD COLUMN ip_allowlist TEXT NOT NULL DEFAULT '';
ALTER TABLE organizations ADD COLUMN disabled_at BIGINT;
ALTER TABLE organizations ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;

ALTER TABLE users ADD COLUMN superadmin BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
ALTER TABLE users ADD COLUMN last_login_at BIGINT;
-- TOTP secrets are sealed with the master key; a pending one waits for its first code.
ALTER TABLE users ADD COLUMN totp_secret_sealed TEXT;
ALTER TABLE users ADD COLUMN totp_pending_sealed TEXT;
ALTER TABLE users ADD COLUMN totp_enabled_at BIGINT;
-- The last accepted TOTP time step: a code is accepted once per step.
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;

-- 'full', or 'mfa_enrolment' for a sign-in that may only enrol TOTP.
ALTER TABLE auth_sessions ADD COLUMN scope TEXT NOT NULL DEFAULT 'full';

-- Earlier password hashes, to refuse reusing one of the last 12.
CREATE TABLE password_history (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, created_at);

-- One-time recovery codes, stored as hashes.
CREATE TABLE recovery_codes (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- One-time links sent by e-mail (address verification, password reset), stored as hashes.
CREATE TABLE user_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, purpose);

-- Staff join by invitation only; the link's token is stored as a hash.
CREATE TABLE invitations (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email            TEXT NOT NULL,
    display_name     TEXT NOT NULL DEFAULT '',
    role             TEXT NOT NULL,
    token_hash       TEXT NOT NULL UNIQUE,
    invited_by       TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    accepted_at      BIGINT,
    revoked_at       BIGINT,
    user_id          TEXT REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX invitations_org ON invitations (organization_id, created_at);

-- Named, scoped API tokens, stored as hashes with their last 4 characters for display.
CREATE TABLE api_tokens (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    token_hash       TEXT NOT NULL UNIQUE,
    token_last4      TEXT NOT NULL,
    permissions      TEXT NOT NULL,
    created_by       TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT,
    last_used_at     BIGINT,
    revoked_at       BIGINT
);
CREATE INDEX api_tokens_org ON api_tokens (organization_id, created_at);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Every state-changing request and every secret reveal. No foreign keys: entries outlive the
-- accounts and resources they name.
CREATE TABLE audit_logs (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT,
    actor_id         TEXT,
    api_token_id     TEXT,
    action           TEXT NOT NULL,
    method           TEXT NOT NULL,
    resource         TEXT NOT NULL,
    resource_id      TEXT,
    result           TEXT NOT NULL,
    status           BIGINT NOT NULL,
    ip               TEXT NOT NULL DEFAULT '',
    user_agent       TEXT NOT NULL DEFAULT '',
    request_id       TEXT,
    details          TEXT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX audit_logs_org_time ON audit_logs (organization_id, created_at);
CREATE INDEX audit_logs_time ON audit_logs (created_at);

-- E-mail kept when no SMTP server is configured; bodies carry one-time links, so they are sealed.
CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    body_sealed      TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX outbox_org_time ON outbox (organization_id, created_at);

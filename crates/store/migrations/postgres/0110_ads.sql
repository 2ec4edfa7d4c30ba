-- The podcast advertising workspace (seed 002): advertisers, shows, episodes, campaigns with
-- account teams, talent availability and the activity log. Dates of the schedule are ISO
-- `YYYY-MM-DD` text (they sort and compare as text); times are unix milliseconds.
CREATE TABLE ad_clients (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    email            TEXT NOT NULL DEFAULT '',
    phone            TEXT NOT NULL DEFAULT '',
    notes            TEXT NOT NULL DEFAULT '',
    owner_id         TEXT REFERENCES users(id) ON DELETE SET NULL,
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX ad_clients_org ON ad_clients (organization_id, name);

-- A user of role `client` sees the campaigns of exactly one advertiser.
CREATE TABLE ad_client_users (
    user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES ad_clients(id) ON DELETE CASCADE
);
CREATE INDEX ad_client_users_client ON ad_client_users (client_id);

CREATE TABLE ad_shows (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    category         TEXT NOT NULL DEFAULT '',
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX ad_shows_org ON ad_shows (organization_id, name);

CREATE TABLE ad_episodes (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    show_id          TEXT NOT NULL REFERENCES ad_shows(id) ON DELETE CASCADE,
    title            TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    air_date         TEXT,
    record_date      TEXT,
    status           TEXT NOT NULL DEFAULT 'draft',
    recording_id     TEXT,
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX ad_episodes_org ON ad_episodes (organization_id, air_date);
CREATE INDEX ad_episodes_show ON ad_episodes (show_id);

CREATE TABLE ad_episode_talent (
    episode_id  TEXT NOT NULL REFERENCES ad_episodes(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (episode_id, user_id)
);
CREATE INDEX ad_episode_talent_user ON ad_episode_talent (user_id);

CREATE TABLE ad_campaigns (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    client_id        TEXT NOT NULL REFERENCES ad_clients(id),
    name             TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'draft',
    budget_cents     BIGINT NOT NULL DEFAULT 0,
    start_date       TEXT,
    end_date         TEXT,
    owner_id         TEXT REFERENCES users(id) ON DELETE SET NULL,
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX ad_campaigns_org ON ad_campaigns (organization_id, start_date);
CREATE INDEX ad_campaigns_client ON ad_campaigns (client_id);

-- The account team: per member, what they may do on this one campaign (everyone listed may view).
CREATE TABLE ad_campaign_team (
    campaign_id      TEXT NOT NULL REFERENCES ad_campaigns(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    can_edit         BIGINT NOT NULL DEFAULT 0,
    can_manage_team  BIGINT NOT NULL DEFAULT 0,
    added_at         BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, user_id)
);
CREATE INDEX ad_campaign_team_user ON ad_campaign_team (user_id);

-- Talent availability: days a talent can (or cannot) record.
CREATE TABLE ad_availability (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    start_date       TEXT NOT NULL,
    end_date         TEXT NOT NULL,
    available        BIGINT NOT NULL DEFAULT 1,
    note             TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL
);
CREATE INDEX ad_availability_user ON ad_availability (organization_id, user_id, start_date);

-- Every change of an ad entity: who, what, the row before and after (JSON). Kept 90 days.
CREATE TABLE ad_activities (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    entity_type      TEXT NOT NULL,
    entity_id        TEXT NOT NULL,
    actor_id         TEXT,
    action           TEXT NOT NULL,
    before_json      TEXT,
    after_json       TEXT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX ad_activities_entity ON ad_activities (organization_id, entity_type, entity_id, created_at);
CREATE INDEX ad_activities_time ON ad_activities (created_at);

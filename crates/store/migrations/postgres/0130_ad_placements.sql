-- Ad placements: a campaign books a spot (pre-, mid- or post-roll) on an episode at a rate.
-- A spot is delivered once its episode is published; reports and billing derive from these.
CREATE TABLE ad_placements (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    campaign_id      TEXT NOT NULL REFERENCES ad_campaigns(id) ON DELETE CASCADE,
    episode_id       TEXT NOT NULL REFERENCES ad_episodes(id) ON DELETE CASCADE,
    position         TEXT NOT NULL,
    rate_cents       BIGINT NOT NULL DEFAULT 0,
    created_by       TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (campaign_id, episode_id, position)
);
CREATE INDEX ad_placements_campaign ON ad_placements (campaign_id);
CREATE INDEX ad_placements_episode ON ad_placements (episode_id);

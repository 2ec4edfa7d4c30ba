-- Source redundancy: how long the fill signal holds a channel's destinations while no input is
-- healthy, before they are stopped (0: no fill signal).
ALTER TABLE source_configs ADD COLUMN fill_hold_ms BIGINT NOT NULL DEFAULT 60000;

-- Source redundancy (seed 000 "SourceConfiguration Table"): the switch settings of a channel,
-- and the transport settings of each of its inputs (SRT latency, passphrase sealed with the
-- master key, the encoder's listener for caller mode).
CREATE TABLE source_configs (
    channel_id               TEXT PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
    redundancy_mode          TEXT NOT NULL DEFAULT 'single',
    failover_threshold_ms    BIGINT NOT NULL DEFAULT 5000,
    health_check_interval_ms BIGINT NOT NULL DEFAULT 1000,
    auto_return              BIGINT NOT NULL DEFAULT 1,
    return_hold_ms           BIGINT NOT NULL DEFAULT 10000,
    version                  BIGINT NOT NULL DEFAULT 1,
    updated_at               BIGINT NOT NULL
);

CREATE TABLE source_inputs (
    input_id          TEXT PRIMARY KEY REFERENCES channel_inputs(id) ON DELETE CASCADE,
    channel_id        TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    latency_ms        BIGINT NOT NULL DEFAULT 120,
    passphrase_sealed TEXT,
    key_length        BIGINT NOT NULL DEFAULT 128,
    caller_address    TEXT,
    caller_port       BIGINT,
    caller_stream_id  TEXT,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX source_inputs_channel ON source_inputs (channel_id);

//! The process-wide Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

/// Installs the global metrics recorder once per process and returns its handle; later calls
/// return the same handle.
pub fn install_metrics() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".to_string()), &latency)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed (only in tests): render from a detached one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// Refreshes CPU, memory, file-descriptor and thread gauges just before a scrape.
pub(crate) fn collect_process_metrics() {
    let collector = PROCESS.get_or_init(|| {
        // Standard `process_*` names, so stock dashboards work.
        let c = metrics_process::Collector::default();
        c.describe();
        c
    });
    collector.collect();
}

/// Sets the live-engine gauges from the engine and the running pushes just before a scrape.
pub(crate) async fn collect_engine_metrics(state: &crate::AppState) {
    for channel in state.engine.channels() {
        let st = channel.status();
        let id = st.id.to_string();
        let live = f64::from(u8::from(st.input_state == lunora_media::InputState::Live));
        metrics::gauge!("lunora_channel_live", "channel" => id.clone()).set(live);
        metrics::gauge!("lunora_channel_input_bitrate_bps", "channel" => id.clone())
            .set(st.bitrate_bps as f64);
        metrics::gauge!("lunora_channel_input_fps", "channel" => id.clone()).set(st.fps);
        metrics::gauge!("lunora_channel_subscribers", "channel" => id).set(st.subscribers as f64);
    }
    for (channel, destination, platform, s) in state.streaming.snapshot().await {
        let labels = [
            ("channel", channel),
            ("destination", destination),
            ("platform", platform),
        ];
        for candidate in ["idle", "connecting", "live", "retrying", "failed"] {
            let now = serde_json::to_value(s.state)
                .ok()
                .and_then(|v| v.as_str().map(|x| x == candidate))
                .unwrap_or(false);
            let mut l = labels.to_vec();
            l.push(("state", candidate.to_string()));
            metrics::gauge!("lunora_destination_state", &l).set(f64::from(u8::from(now)));
        }
        metrics::gauge!("lunora_destination_bitrate_bps", &labels).set(s.bitrate_bps as f64);
        metrics::gauge!("lunora_destination_bytes_sent", &labels).set(s.bytes_sent as f64);
        metrics::gauge!("lunora_destination_reconnects", &labels).set(s.reconnects as f64);
    }
}

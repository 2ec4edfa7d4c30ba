//! `dashboard.update`: each organization's live figures, published on its `org` topic right
//! after the camera monitor's pass (so at most once a second) and only when a figure changed
//! (counts exactly, bitrates by more than a tenth).

use std::collections::{HashMap, HashSet};

use lunora_media::push::PushState;
use lunora_store::Camera;

use super::catalog::DashboardUpdate;
use crate::AppState;

/// The last figures published per organization.
#[derive(Default)]
pub struct Dashboards {
    last: HashMap<String, DashboardUpdate>,
}

fn bitrate_moved(a: u64, b: u64) -> bool {
    a.abs_diff(b).saturating_mul(10) > a.max(b)
}

fn changed(old: &DashboardUpdate, new: &DashboardUpdate) -> bool {
    old.cameras_total != new.cameras_total
        || old.cameras_online != new.cameras_online
        || old.cameras_offline != new.cameras_offline
        || old.live_channels != new.live_channels
        || old.destinations_live != new.destinations_live
        || old.active_alerts != new.active_alerts
        || bitrate_moved(old.ingest_bps, new.ingest_bps)
        || bitrate_moved(old.egress_bps, new.egress_bps)
}

fn empty(at: &str) -> DashboardUpdate {
    DashboardUpdate {
        cameras_total: 0,
        cameras_online: 0,
        cameras_offline: 0,
        live_channels: 0,
        destinations_live: 0,
        ingest_bps: 0,
        egress_bps: 0,
        active_alerts: 0,
        at: at.to_string(),
    }
}

impl Dashboards {
    /// Computes every organization's figures and publishes those that changed.
    pub async fn refresh(&mut self, state: &AppState, cameras: &[Camera]) {
        let at = crate::util::rfc3339(lunora_store::now_ms());
        let mut figures: HashMap<String, DashboardUpdate> = HashMap::new();
        for cam in cameras {
            let f = figures
                .entry(cam.organization_id.clone())
                .or_insert_with(|| empty(&at));
            f.cameras_total += 1;
            if state.presence.online(&cam.id) == Some(true) {
                f.cameras_online += 1;
            } else {
                f.cameras_offline += 1;
            }
        }
        let orgs: HashMap<String, String> = match state.db.channel_organizations().await {
            Ok(rows) => rows.iter().cloned().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "dashboard: cannot read channels");
                return;
            }
        };
        for ch in state.engine.channels() {
            let s = ch.status();
            if s.input_state != lunora_media::InputState::Live {
                continue;
            }
            if let Some(org) = orgs.get(&s.id.to_string()) {
                let f = figures.entry(org.clone()).or_insert_with(|| empty(&at));
                f.live_channels += 1;
                f.ingest_bps += s.bitrate_bps;
            }
        }
        for (channel, _destination, _platform, s) in state.streaming.snapshot().await {
            if let Some(org) = orgs.get(&channel) {
                let f = figures.entry(org.clone()).or_insert_with(|| empty(&at));
                if s.state == PushState::Live {
                    f.destinations_live += 1;
                    f.egress_bps += s.bitrate_bps;
                }
            }
        }
        match state.db.open_alert_counts().await {
            Ok(counts) => {
                for (org, n) in counts {
                    figures
                        .entry(org)
                        .or_insert_with(|| empty(&at))
                        .active_alerts = n as u64;
                }
            }
            Err(e) => tracing::warn!(error = %e, "dashboard: cannot count alerts"),
        }
        // An organization whose figures all went away gets one last update of zeros.
        let gone: HashSet<String> = self
            .last
            .keys()
            .filter(|o| !figures.contains_key(*o))
            .cloned()
            .collect();
        for org in gone {
            figures.insert(org, empty(&at));
        }
        for (org, f) in figures {
            let publish = match self.last.get(&org) {
                Some(old) => changed(old, &f),
                None => f != empty(&at),
            };
            if publish {
                state.events.publish(&org, "org".into(), &f);
                if f == empty(&at) {
                    self.last.remove(&org);
                } else {
                    self.last.insert(org, f);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates_move_by_more_than_a_tenth() {
        assert!(!bitrate_moved(1_000_000, 1_050_000));
        assert!(bitrate_moved(1_000_000, 1_200_000));
        assert!(bitrate_moved(0, 1));
        assert!(!bitrate_moved(0, 0));
    }
}

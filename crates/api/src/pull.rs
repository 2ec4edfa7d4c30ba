//! Cameras that only serve a stream (RTSP, or SRT in listener mode) are pulled: a supervised
//! FFmpeg (`lunora_transcode::Supervisor`: restarts with capped exponential backoff) reads the
//! camera's URL (`-rtsp_transport tcp`) and publishes it, unchanged, to the local RTMP ingest
//! with the camera's own key, so a pulled camera goes through exactly the same path as one that
//! pushes. A reconciler starts pulls for enabled cameras with a pull URL and kills those whose
//! camera was disabled or deleted; the camera's status shows the pull's state and its last
//! error in words, with any password in the URL masked.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use lunora_transcode::{Backoff, Status, Supervisor, SupervisorConfig};
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::AppState;

/// How often the reconciler compares running pulls with the cameras.
const RECONCILE_EVERY: Duration = Duration::from_secs(2);

/// The pull of one camera, as its status shows it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct PullStatus {
    /// The pull URL with any user name and password masked.
    pub url: String,
    /// `connecting`, `pulling`, `retrying` or `failed`.
    pub state: String,
    /// The last error, in words.
    pub error: Option<String>,
    /// Restarts after the camera's stream failed.
    pub restarts: u64,
}

struct Pull {
    supervisor: Supervisor,
    /// Kept so FFmpeg's stdin stays open (it reads the camera, not stdin).
    _input: mpsc::Sender<Bytes>,
    masked: String,
}

/// The running pulls, by camera id.
#[derive(Default)]
pub struct Pulls {
    running: parking_lot::Mutex<HashMap<String, Pull>>,
}

/// `url` with its user information (`user:pass@`) replaced by `****@`.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://****@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The secrets of `url` (user information, the whole user:pass and the password alone) to
/// redact from FFmpeg's messages.
fn secrets_of(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return Vec::new();
    };
    let userinfo = &rest[..at];
    let mut out = vec![format!("{userinfo}@")];
    if let Some((_, password)) = userinfo.split_once(':') {
        if password.len() >= 3 {
            out.push(password.to_string());
        }
    }
    out
}

/// FFmpeg's words about a failed pull, as a person reads them.
pub fn explain(error: &str) -> String {
    if let Some((_, rest)) = error.split_once("method DESCRIBE failed: ") {
        let status = rest.trim();
        let hint = if status.starts_with("401") {
            " (check the user name and password in the pull URL)"
        } else {
            ""
        };
        return format!("RTSP server refused: {status}{hint}");
    }
    if let Some((_, rest)) = error.split_once("Server returned ") {
        return format!("RTSP server refused: {}", rest.trim());
    }
    if error.contains("Connection refused") {
        return "cannot connect to the camera: connection refused".into();
    }
    if error.contains("Connection timed out") || error.contains("timed out") {
        return "the camera did not answer in time".into();
    }
    if error.contains("No route to host") || error.contains("Name or service not known") {
        return "the camera's address cannot be reached".into();
    }
    error.to_string()
}

impl Pulls {
    /// The pull of a camera, if it is pulled.
    pub fn status(&self, camera_id: &str) -> Option<PullStatus> {
        let running = self.running.lock();
        let p = running.get(camera_id)?;
        let metrics = p.supervisor.metrics().borrow().clone();
        let (state, error) = match p.supervisor.status().borrow().clone() {
            Status::Starting => ("connecting", metrics.last_error.clone()),
            Status::Running => ("pulling", None),
            Status::Restarting { last_error, .. } => ("retrying", Some(last_error)),
            Status::Failed { error } => ("failed", Some(error)),
            Status::Stopped => ("failed", metrics.last_error.clone()),
        };
        Some(PullStatus {
            url: p.masked.clone(),
            state: state.into(),
            error: error.map(|e| explain(&e)),
            restarts: metrics.restarts,
        })
    }

    /// Kills the camera's pull, if any.
    pub fn stop(&self, camera_id: &str) {
        if let Some(p) = self.running.lock().remove(camera_id) {
            tracing::info!(camera = %camera_id, url = %p.masked, "camera pull stopped");
            // Dropping the supervisor kills FFmpeg's process group at once.
            drop(p);
        }
    }

    fn start(&self, camera_id: &str, url: &str, target: &str) {
        let mut args: Vec<String> = [
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "level+warning",
            "-nostats",
            "-progress",
            "pipe:2",
        ]
        .map(String::from)
        .to_vec();
        if url.starts_with("rtsp") {
            args.extend(["-rtsp_transport", "tcp", "-timeout", "10000000"].map(String::from));
        }
        args.extend(
            [
                "-i", url, "-map", "0:v:0", "-map", "0:a:0?", "-c:v", "copy", "-c:a", "aac",
                "-b:a", "96k", "-f", "flv", target,
            ]
            .map(String::from),
        );
        let masked = mask_url(url);
        let config = SupervisorConfig {
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(30),
                jitter: 0.25,
            },
            stable_after: Duration::from_secs(30),
            label: format!("pull {camera_id} {masked}"),
            redact: secrets_of(url),
            ..SupervisorConfig::new(args)
        };
        let (supervisor, pipes) = Supervisor::start(config);
        let mut output = pipes.output;
        tokio::spawn(async move { while output.recv().await.is_some() {} });
        tracing::info!(camera = %camera_id, url = %masked, "camera pull started");
        self.running.lock().insert(
            camera_id.to_string(),
            Pull {
                supervisor,
                _input: pipes.input,
                masked,
            },
        );
    }

    /// Kills every pull (the server is stopping).
    pub fn stop_all(&self) {
        self.running.lock().clear();
    }

    fn running_ids(&self) -> Vec<String> {
        self.running.lock().keys().cloned().collect()
    }

    fn is_running(&self, camera_id: &str) -> bool {
        self.running.lock().contains_key(camera_id)
    }
}

/// Keeps one pull per enabled camera with a pull URL, and none for the others.
pub fn spawn_reconciler(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RECONCILE_EVERY);
        loop {
            tick.tick().await;
            let Ok(cameras) = state.db.all_cameras().await else {
                continue;
            };
            let wanted: HashMap<&str, &lunora_store::Camera> = cameras
                .iter()
                .filter(|c| c.enabled && c.has_pull_url)
                .map(|c| (c.id.as_str(), c))
                .collect();
            for id in state.pulls.running_ids() {
                if !wanted.contains_key(id.as_str()) {
                    state.pulls.stop(&id);
                }
            }
            for (id, _cam) in wanted {
                if state.pulls.is_running(id) {
                    continue;
                }
                match state.db.camera_pull_secrets(id, &state.secrets).await {
                    Ok(Some((url, key))) => {
                        let target =
                            format!("rtmp://127.0.0.1:{}/live/{key}", state.config.rtmp_port);
                        state.pulls.start(id, &url, &target);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(camera = %id, error = %e, "cannot read the pull URL"),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_url("rtsp://admin:s3cret@10.0.0.5:554/stream1"),
            "rtsp://****@10.0.0.5:554/stream1"
        );
        assert_eq!(mask_url("rtsp://10.0.0.5/a@b"), "rtsp://10.0.0.5/a@b");
        assert_eq!(
            secrets_of("rtsp://admin:s3cret@10.0.0.5/x"),
            vec!["admin:s3cret@".to_string(), "s3cret".to_string()]
        );
    }

    #[test]
    fn errors_are_in_words() {
        assert_eq!(
            explain("[rtsp @ 0x55] method DESCRIBE failed: 404 Not Found"),
            "RTSP server refused: 404 Not Found"
        );
        assert_eq!(
            explain("FFmpeg exited with code 1: rtsp://****@h/x: Connection refused"),
            "cannot connect to the camera: connection refused"
        );
    }
}

//! Real media for end-to-end tests: a file made once by FFmpeg, publishers and probes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A 1280x720 30 fps H.264 (keyframe every 1 s) + 48 kHz stereo AAC file of 20 seconds,
/// made once per test binary.
pub fn test_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| make_test_file("testsrc-720p30.flv", 30))
}

/// The same picture and sound with a keyframe only every 4 s: no built-in preset (they want
/// one every 2 s) can pass it through, so a destination with any of them transcodes it.
pub fn test_file_sparse_keyframes() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| make_test_file("testsrc-720p30-gop120.flv", 120))
}

/// Encodes 20 s of 720p30 `testsrc2` with a keyframe every `gop` frames and a 440 Hz tone.
fn make_test_file(name: &str, gop: u32) -> PathBuf {
    lunora_testkit::require("ffmpeg", "ffmpeg").unwrap();
    let dir = std::env::temp_dir().join(format!("lunora-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=1280x720:rate=30")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t",
            "20",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", &gop.to_string(), "-keyint_min", &gop.to_string()])
        .args(["-sc_threshold", "0", "-pix_fmt", "yuv420p", "-b:v", "1500k"])
        .args(["-c:a", "aac", "-ac", "2", "-b:a", "96k", "-f", "flv"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// `ffmpeg -re -stream_loop -1 -i FILE -c copy -f flv URL`, killed on drop.
pub struct Publisher {
    child: Child,
}

impl Publisher {
    pub fn start(url: &str) -> Publisher {
        Publisher::start_paced(url, 1.0)
    }

    /// Like [`Publisher::start`], reading the file at `pace` × real time (`-readrate`):
    /// frames arrive more slowly, their timestamps are unchanged.
    pub fn start_paced(url: &str, pace: f64) -> Publisher {
        Publisher::start_file(url, test_file(), pace)
    }

    /// Publishes `file` in a loop at `pace` × real time.
    pub fn start_file(url: &str, file: &Path, pace: f64) -> Publisher {
        let child = Command::new("ffmpeg")
            .args(["-v", "error", "-readrate"])
            .arg(pace.to_string())
            .args(["-stream_loop", "-1", "-i"])
            .arg(file)
            .args(["-c", "copy", "-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Publisher { child }
    }

    /// Waits up to `within` for the publisher to exit; its status and stderr.
    pub fn wait_exit(&mut self, within: Duration) -> Option<(std::process::ExitStatus, String)> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Some((status, err));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `ffprobe -show_streams` of a URL or file, as JSON.
pub fn probe_streams(url: &str) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rw_timeout",
            "15000000",
            "-show_streams",
            "-of",
            "json",
            url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Records `secs` seconds of `url` into `out` with `-c copy`.
pub fn record(url: &str, secs: u32, out: &Path) -> std::process::Output {
    Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-rw_timeout", "15000000", "-i", url])
        .args(["-t", &secs.to_string(), "-c", "copy", "-f", "flv"])
        .arg(out)
        .output()
        .unwrap()
}

/// One field of every packet of one stream kind (`v` or `a`) in a file, in order.
fn packet_field(file: &Path, kind: &str, field: &str, extra: &[&str]) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", kind])
        .args(extra)
        .args([
            "-show_entries",
            &format!("packet={field}"),
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_end_matches(',').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Decode timestamps (seconds) of the packets of one stream kind (`v` or `a`) in a file.
pub fn packet_times(file: &Path, kind: &str) -> Vec<f64> {
    packet_field(file, kind, "dts_time", &[])
        .iter()
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// MD5 of each packet's data, in order, for one stream kind (`v` or `a`) in a file.
pub fn packet_hashes(file: &Path, kind: &str) -> Vec<String> {
    packet_field(file, kind, "data_hash", &["-show_data_hash", "MD5"])
}

/// What FFmpeg's decoders complain of when decoding the whole file (empty: it decodes clean).
pub fn decode_errors(file: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let mut errors = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        errors.push_str(&format!("ffmpeg exited with {}", out.status));
    }
    errors
}

/// The stream with `codec_type` from an ffprobe answer.
pub fn stream<'a>(probe: &'a Value, codec_type: &str) -> &'a Value {
    probe["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == codec_type))
        .unwrap_or_else(|| panic!("no {codec_type} stream in {probe}"))
}

/// FFmpeg encodes (FLV in, progress on stderr: not the short thumbnail decodes) whose
/// parent is `pid`.
pub fn ffmpeg_children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map(|(_, c)| c).unwrap_or("");
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
        let encode = String::from_utf8_lossy(&cmdline).contains("-progress");
        if ppid == pid && comm == "ffmpeg" && state != "Z" && encode {
            out.push(child);
        }
    }
    out.sort_unstable();
    out
}

pub async fn wait_children(pid: u32, n: usize, within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    loop {
        let kids = ffmpeg_children(pid);
        if kids.len() == n {
            return kids;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} FFmpeg children, found {kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// [`record`] off the runtime: `secs` of media from `url` into `out`; fails the test with
/// FFmpeg's own words (after `context`) if it could not.
pub async fn record_ok(url: String, secs: u32, out: PathBuf, context: &str) -> PathBuf {
    let rec = tokio::task::spawn_blocking({
        let out = out.clone();
        move || record(&url, secs, &out)
    })
    .await
    .unwrap();
    assert!(
        rec.status.success(),
        "{context}{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    out
}

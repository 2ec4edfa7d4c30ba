//! Transcoding benchmark (BENCHMARKS.md, "Transcoding"). Ignored by default; run with
//!
//! ```sh
//! cargo test --release -p lunora-transcode --test bench -- --ignored --nocapture --test-threads=1
//! ```
//!
//! It encodes a 1080p30 source with the command line Lunora uses for each preset
//! ([`ffmpeg_args`], FLV in, FLV out), pinned to one core (`taskset -c 1`), as fast as it
//! goes: the speed factor is media seconds per wall second, the CPU cost is CPU seconds per
//! media second (so "35 %" means the encode needs 35 % of one core to keep up with a live
//! source). Two sources: `testsrc2` (clean synthetic picture, cheap for x264) and the same
//! with temporal noise (closer to a camera's sensor noise, the expensive case).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use lunora_transcode::{builtin_preset, ffmpeg_args, Preset, Speed};

const SECONDS: u32 = 10;

fn source(name: &str, filter: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("lunora-bench-{name}.flv"));
    if path.exists() {
        return path;
    }
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=1920x1080:rate=30{filter}"))
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &SECONDS.to_string()])
        // A contribution feed: high bitrate, 2 s GOP, what an encoder sends to Lunora.
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-b:v", "8000k", "-g", "60",
        ])
        .args([
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path
}

/// CPU seconds used by this process's waited-for children so far (`cutime + cstime`).
fn children_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = stat.rsplit_once(") ").unwrap().1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is index 0, so cutime (16) is 13 and cstime (17) is 14.
    let ticks: f64 = fields[13].parse::<f64>().unwrap() + fields[14].parse::<f64>().unwrap();
    ticks / 100.0
}

struct Run {
    speed: f64,
    cpu_per_media_second: f64,
}

/// Encodes `input` with `preset`'s command line on `cores` (a taskset list).
fn encode(preset: &Preset, input: &Path, cores: &str) -> Run {
    let args: Vec<String> = ffmpeg_args(preset)
        .into_iter()
        .map(|a| {
            if a == "pipe:0" {
                input.display().to_string()
            } else {
                a
            }
        })
        .collect();
    let cpu_before = children_cpu();
    let started = Instant::now();
    let out = Command::new("taskset")
        .args(["-c", cores, "ffmpeg"])
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cpu = children_cpu() - cpu_before;
    Run {
        speed: f64::from(SECONDS) / wall,
        cpu_per_media_second: cpu / f64::from(SECONDS),
    }
}

#[test]
#[ignore = "benchmark: minutes of CPU; see BENCHMARKS.md"]
fn cpu_and_speed_per_preset_on_one_core() {
    let sources = [
        ("clean", source("clean", "")),
        ("noisy", source("noisy", ",noise=alls=12:allf=t")),
    ];
    println!("| preset | source | speed on 1 core | CPU per media second |");
    println!("| --- | --- | --- | --- |");
    for id in [
        "builtin-youtube-1080p30",
        "builtin-x-720p30",
        "builtin-custom-480p30",
    ] {
        let preset = builtin_preset(id).unwrap();
        for (name, path) in &sources {
            let r = encode(&preset, path, "1");
            println!(
                "| {} ({}) | {name} | {:.2}x | {:.0} % of a core |",
                preset.name,
                preset.video.speed,
                r.speed,
                r.cpu_per_media_second * 100.0
            );
        }
    }
    println!();
    println!("YouTube HD by x264 speed setting, one core:");
    println!("| x264 preset | source | speed | CPU per media second |");
    println!("| --- | --- | --- | --- |");
    for speed in [Speed::Veryfast, Speed::Superfast, Speed::Ultrafast] {
        let mut preset = builtin_preset("builtin-youtube-1080p30").unwrap();
        preset.video.speed = speed;
        for (name, path) in &sources {
            let r = encode(&preset, path, "1");
            println!(
                "| {speed} | {name} | {:.2}x | {:.0} % |",
                r.speed,
                r.cpu_per_media_second * 100.0
            );
        }
    }
}

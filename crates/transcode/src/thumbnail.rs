//! One JPEG from one H.264 keyframe: `ffmpeg -f h264 -i pipe:0 -frames:v 1 -f mjpeg pipe:1`,
//! for channel thumbnails.
//!
//! The process runs in its own process group, is killed when the future is dropped or the
//! time limit passes, and its output is bounded. Callers bound how many run at once.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest JPEG accepted from FFmpeg.
pub const MAX_THUMBNAIL_BYTES: usize = 4 << 20;

/// Why no thumbnail was made.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("FFmpeg took longer than {0:?}")]
    Timeout(Duration),
    #[error("FFmpeg failed: {0}")]
    Failed(String),
    #[error("FFmpeg wrote more than {MAX_THUMBNAIL_BYTES} bytes")]
    TooLarge,
    #[error("reading FFmpeg's output failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Decodes `annexb` (SPS, PPS and one IDR picture with start codes) into a JPEG at most
/// `max_width` pixels wide (never upscaled), within `timeout`.
pub async fn thumbnail(
    ffmpeg: &Path,
    annexb: Bytes,
    max_width: u32,
    timeout: Duration,
) -> Result<Bytes, ThumbnailError> {
    let mut cmd = std::process::Command::new(ffmpeg);
    cmd.args([
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-f",
        "h264",
        "-i",
        "pipe:0",
    ])
    .args(["-frames:v", "1", "-vf"])
    .arg(format!("scale='min({max_width},iw)':-2"))
    .args(["-q:v", "5", "-f", "mjpeg", "pipe:1"])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| ThumbnailError::Spawn {
        program: ffmpeg.display().to_string(),
        source,
    })?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async move {
        let feed = async move {
            if let Some(mut stdin) = stdin {
                // FFmpeg may stop reading once it has its frame: a broken pipe is fine.
                let _ = stdin.write_all(&annexb).await;
                let _ = stdin.shutdown().await;
            }
        };
        let read_out = async move {
            let mut out = Vec::new();
            if let Some(stdout) = stdout {
                let mut limited = stdout.take(MAX_THUMBNAIL_BYTES as u64 + 1);
                limited.read_to_end(&mut out).await?;
            }
            Ok::<_, std::io::Error>(out)
        };
        let read_err = async move {
            let mut err = Vec::new();
            if let Some(stderr) = stderr {
                let _ = stderr.take(16 * 1024).read_to_end(&mut err).await;
            }
            err
        };
        let ((), out, err) = tokio::join!(feed, read_out, read_err);
        let status = child.wait().await?;
        Ok::<_, ThumbnailError>((status, out?, err))
    };
    let (status, out, err) = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ThumbnailError::Timeout(timeout))??;
    if out.len() > MAX_THUMBNAIL_BYTES {
        return Err(ThumbnailError::TooLarge);
    }
    if !status.success() || out.is_empty() {
        let msg = String::from_utf8_lossy(&err);
        let line = msg.lines().last().unwrap_or("no output").trim().to_string();
        return Err(ThumbnailError::Failed(format!("{status}: {line}")));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn garbage_is_an_error_and_a_missing_program_too() {
        let missing = thumbnail(
            Path::new("/nonexistent/ffmpeg"),
            Bytes::from_static(b"x"),
            320,
            Duration::from_secs(5),
        )
        .await;
        assert!(matches!(missing, Err(ThumbnailError::Spawn { .. })));
        if Path::new("/usr/bin/ffmpeg").exists() {
            let garbage = thumbnail(
                Path::new("/usr/bin/ffmpeg"),
                Bytes::from_static(&[0, 0, 0, 1, 0x65, 1, 2, 3]),
                320,
                Duration::from_secs(10),
            )
            .await;
            assert!(
                matches!(garbage, Err(ThumbnailError::Failed(_))),
                "{garbage:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_real_keyframe_becomes_a_jpeg() {
        if !Path::new("/usr/bin/ffmpeg").exists() {
            return;
        }
        // One 320x240 IDR picture from FFmpeg's own encoder.
        let out = std::process::Command::new("/usr/bin/ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=1",
            ])
            .args(["-frames:v", "1", "-c:v", "libx264", "-f", "h264", "pipe:1"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let jpeg = thumbnail(
            Path::new("/usr/bin/ffmpeg"),
            Bytes::from(out.stdout),
            160,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "JPEG SOI");
    }
}

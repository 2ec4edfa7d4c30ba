#!/usr/bin/env bash
# Installs the Debian packages Lunora needs, only those that are missing.
#   scripts/deps.sh run    what the server uses at run time (FFmpeg for transcoding)
#   scripts/deps.sh test   plus the real peers the tests drive: PostgreSQL, Chromium, nginx with
#                          the RTMP module, srt-tools, and s3s-fs (an S3-compatible server, from
#                          crates.io) for the cold storage tier, and GStreamer's RTSP server
#                          (python3-gi + gst-rtsp-server) that plays an IP camera for the RTSP
#                          pull test
set -euo pipefail

want=(ffmpeg)
if [ "${1:-run}" = test ]; then
  want+=(postgresql chromium nginx libnginx-mod-rtmp libnginx-mod-stream srt-tools openssl)
  want+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    gstreamer1.0-plugins-ugly)
fi

# The S3-compatible server of the storage-tier tests is a Rust program: cargo installs it once
# (0.14 is the last release that builds with Rust 1.95).
if [ "${1:-run}" = test ] && ! command -v s3s-fs >/dev/null 2>&1; then
  echo "deps: installing s3s-fs (cargo install)" >&2
  cargo install --locked --quiet s3s-fs@0.14.1 --features binary
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

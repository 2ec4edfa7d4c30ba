#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run Lunora on embedded
# defaults (SQLite and media under ./data, HTTP on 8080, RTMP on 1935, SRT on 9998).
# Arguments go to `lunora serve`, e.g. scripts/run.sh --http-addr 127.0.0.1:8080
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
scripts/web.sh
cargo build --release --locked -p lunora
exec "${CARGO_TARGET_DIR:-target}/release/lunora" serve "$@"

#!/usr/bin/env bash
# Viewer platform at scale (issue 11), against a release `lunora serve` started fresh on a
# temporary data directory for each scenario, pinned to one core, the load generator
# (crates/bench, `lunora-bench`) to the other:
#
#   chat  BENCH_CHAT_PARTICIPANTS (500) WebSocket participants in one stream's live chat,
#         BENCH_CHAT_POSTERS (50) of them signed-in posters at BENCH_CHAT_PER_MINUTE (6)
#         messages a minute each: fan-out delay from send to receipt p50/p90/p99/max (one
#         clock: posters and readers are in the generator), refused posts, lost deliveries,
#         participants dropped, server CPU and RSS (`lunora-bench chat`)
#   hls   BENCH_HLS_VIEWERS (2000) LL-HLS players of one live 480p stream (frame-stamped),
#         each reloading the playlist (blocking) and fetching every part from the server's
#         memory: delivered rate, stalls, and glass-to-glass latency to arrival in the player
#         p50/p99 (`lunora-bench run --hls ll`)
#
#   scripts/bench-viewers.sh                          both
#   BENCH_SCENARIOS=chat BENCH_DURATION=10 scripts/bench-viewers.sh
#
# Knobs: BENCH_SCENARIOS ("chat hls"), BENCH_DURATION (20 s measured), BENCH_RAMP_RATE (200/s),
# BENCH_SERVER_CPU / BENCH_GEN_CPU (0 / 1), BENCH_NO_BUILD=1, BENCH_LUNORA_BIN / BENCH_GEN_BIN,
# BENCH_OUT (results directory). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

scenarios=${BENCH_SCENARIOS:-"chat hls"}
duration=${BENCH_DURATION:-20}
ramp=${BENCH_RAMP_RATE:-200}
participants=${BENCH_CHAT_PARTICIPANTS:-500}
posters=${BENCH_CHAT_POSTERS:-50}
per_minute=${BENCH_CHAT_PER_MINUTE:-6}
viewers=${BENCH_HLS_VIEWERS:-2000}
server_cpu=${BENCH_SERVER_CPU:-0}
gen_cpu=${BENCH_GEN_CPU:-1}
out=${BENCH_OUT:-$(mktemp -d /tmp/lunora-bench-viewers.XXXXXX)}
mkdir -p "$out"
results="$out/results.jsonl"
admin_email=bench@example.com
admin_password='Bench-Viewers-Pass-1'

for tool in taskset ffmpeg curl; do
  command -v "$tool" >/dev/null || { scripts/deps.sh run; break; }
done
target_dir=${CARGO_TARGET_DIR:-target}
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  [ -d web/dist ] || scripts/web.sh
  cargo build --release --locked -p lunora -p lunora-bench
fi
lunora=${BENCH_LUNORA_BIN:-$target_dir/release/lunora}
bench=${BENCH_GEN_BIN:-$target_dir/release/lunora-bench}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

server_dir=""
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  if [ -n "$server_dir" ]; then
    cp "$server_dir/server.log" "$out/server-$1.log" 2>/dev/null || true
    rm -rf "$server_dir"
    server_dir=""
  fi
}
trap 'stop_server last' EXIT

start_lunora() {
  server_dir=$(mktemp -d /tmp/lunora-bench-server.XXXXXX)
  http=$("$bench" free-port)
  rtmp=$("$bench" free-port)
  LUNORA_DATA_DIR="$server_dir" \
  LUNORA_HTTP_ADDR="127.0.0.1:$http" \
  LUNORA_RTMP_ADDR="127.0.0.1:$rtmp" \
  LUNORA_SRT_ADDR="127.0.0.1:0" \
  LUNORA_LOG_LEVEL=warn \
  LUNORA_LOG_FORMAT=json \
  LUNORA_ADMIN_EMAIL="$admin_email" \
  LUNORA_ADMIN_PASSWORD="$admin_password" \
  LUNORA_AUTH_STAFF_MFA=optional \
  LUNORA_RATELIMIT_AUTH_PER_MINUTE=0 \
  LUNORA_RATELIMIT_STAFF_PER_MINUTE=0 \
  LUNORA_RATELIMIT_ANONYMOUS_PER_MINUTE=0 \
    taskset -c "$server_cpu" "$lunora" serve >"$server_dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$http/api/v1/health/overall" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$server_dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
}

for scenario in $scenarios; do
  case "$scenario" in
    chat)
      start_lunora
      echo "== chat: $participants participants, $posters posters × $per_minute/min; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
      taskset -c "$gen_cpu" "$bench" chat --lunora-url "http://127.0.0.1:$http" \
        --admin-email "$admin_email" --admin-password "$admin_password" --server-pid "$server_pid" \
        -p "$participants" --posters "$posters" --per-minute "$per_minute" \
        --duration "$duration" --ramp-rate "$ramp" | tee "$out/chat.json"
      stop_server chat
      python3 - "$out/chat.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"chat participants   {r['participants']} ({r['posters']} posting, {r['messages_per_second']:.1f} msg/s; {r['participants_dropped']} dropped)")
print(f"deliveries          {r['deliveries']} of {r['expected_deliveries']} expected, {r['refused']} posts refused")
print(f"fan-out send→recv   p50 {r['fanout_p50_ms']:.1f} ms, p90 {r['fanout_p90_ms']:.1f}, p99 {r['fanout_p99_ms']:.1f}, max {r['fanout_max_ms']:.1f}")
print(f"server              {r['server_cores']:.2f} cores, {r['server_rss_mib']:.0f} MiB RSS")
PY
      ;;
    hls)
      "$bench" media --profile 480p >/dev/null
      start_lunora
      echo "== hls: 1 stream × $viewers LL-HLS viewers; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
      taskset -c "$gen_cpu" "$bench" run --lunora-url "http://127.0.0.1:$http" \
        --lunora-rtmp "rtmp://127.0.0.1:$rtmp/live" \
        --admin-email "$admin_email" --admin-password "$admin_password" \
        --server-pid "$server_pid" --server-name lunora --scenario "hls-viewers-$viewers" \
        --duration "$duration" --warmup 5 --ramp-rate "$ramp" --stamp --hls ll \
        -n 1 -m "$viewers" --profile 480p --json "$results" >/dev/null ||
        echo "bench: hls failed" >&2
      stop_server hls
      "$bench" report "$results" | tee "$out/table.txt"
      ;;
    *) echo "bench: unknown scenario $scenario" >&2; exit 2 ;;
  esac
done
echo "results in $out" >&2

#!/usr/bin/env bash
# HLS benchmark of a release `lunora serve` (issue 7): glass-to-glass latency of LL-HLS and
# plain HLS with a frame-stamped source, time to first frame for a new viewer, and how many
# 1 Mb/s passthrough channels with HLS and recording the machine carries. The server is started
# fresh on a temporary data directory for each run and pinned to one core, the load generator
# (crates/bench, `lunora-bench`) to the other, as in scripts/bench-relay.sh.
#
#   scripts/bench-hls.sh                   latency, segments, then channels for 100 250 500
#   BENCH_QUICK=1 scripts/bench-hls.sh     10 s runs, channels for 10 50
#
# Scenarios (BENCH_SCENARIOS, in order; default "latency segments channels"):
#   latency   1 channel of BENCH_LATENCY_PROFILE (720p), frame-stamped, BENCH_LATENCY_PLAYERS (4)
#             LL-HLS players that leave and join again every BENCH_REJOIN (3) s: glass-to-glass
#             latency to arrival in the player, and time to first frame of each join
#   segments  the same with plain HLS players fetching whole segments (stalled: no video for 4 s,
#             since whole 2 s segments arrive 2 s apart)
#   channels  for N in BENCH_CHANNELS ("100 250 500"): N channels of 480p (1 Mb/s), recording
#             on, one frame-stamped LL-HLS player each; delivered Mb/s, server CPU and RSS,
#             stalled players, latency, lunora_hls_channels, lunora_recordings_active, disk
# Knobs (environment):
#   BENCH_DURATION    measured seconds per run (30 for latency/segments, 20 for channels; 10 quick)
#   BENCH_WARMUP      seconds between the last player starting and the measurement (5)
#   BENCH_RAMP_RATE   new connections per second while ramping up (100)
#   BENCH_SERVER_CPU / BENCH_GEN_CPU   cores for the server and the generator (0 / 1)
#   BENCH_NICE        priority of both (default -20 as root, 0 to not)
#   BENCH_OUT         directory for results (a new one under /tmp)
#   BENCH_NO_BUILD=1  use the release binaries already built
#   BENCH_LUNORA_BIN  another lunora binary to measure
# Recordings are written to the server's temporary data directory (about 8 MB/s per 60
# channels) and deleted with it after each run.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=${BENCH_QUICK:-0}
scenarios=${BENCH_SCENARIOS:-"latency segments channels"}
if [ "$quick" = 1 ]; then
  channels=${BENCH_CHANNELS:-"10 50"}
  latency_duration=${BENCH_DURATION:-10}
  channels_duration=${BENCH_DURATION:-10}
else
  channels=${BENCH_CHANNELS:-"100 250 500"}
  latency_duration=${BENCH_DURATION:-30}
  channels_duration=${BENCH_DURATION:-20}
fi
latency_profile=${BENCH_LATENCY_PROFILE:-720p}
latency_players=${BENCH_LATENCY_PLAYERS:-4}
rejoin=${BENCH_REJOIN:-3}
warmup=${BENCH_WARMUP:-5}
ramp=${BENCH_RAMP_RATE:-100}
if [ "$(id -u)" -eq 0 ]; then nice_level=${BENCH_NICE:--20}; else nice_level=${BENCH_NICE:-0}; fi
autogroup_nice=""
if [ "$nice_level" != 0 ] && [ -w /proc/self/autogroup ]; then
  autogroup_nice=$(sed -n 's/.* nice //p' /proc/self/autogroup)
  echo "$nice_level" >/proc/self/autogroup 2>/dev/null || autogroup_nice=""
fi
server_cpu=${BENCH_SERVER_CPU:-0}
gen_cpu=${BENCH_GEN_CPU:-1}
out=${BENCH_OUT:-$(mktemp -d /tmp/lunora-bench-hls.XXXXXX)}
mkdir -p "$out"
results="$out/results.jsonl"

admin_email=bench@example.com
admin_password='Bench-Hls-Pass-1'

for tool in taskset ffmpeg curl; do
  command -v "$tool" >/dev/null || { scripts/deps.sh test; break; }
done

target_dir=${CARGO_TARGET_DIR:-target}
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  # The UI is not needed here: without web/dist the binary embeds a placeholder page.
  cargo build --release --locked -p lunora -p lunora-bench
fi
lunora=${BENCH_LUNORA_BIN:-$target_dir/release/lunora}
bench="$target_dir/release/lunora-bench"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

for p in $latency_profile 480p; do "$bench" media --profile "$p" >/dev/null; done

server_pid=""
server_dir=""
target_args=()

stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  [ -n "$server_dir" ] && rm -rf "$server_dir"
  server_dir=""
}
on_exit() {
  stop_server
  [ -n "$autogroup_nice" ] && echo "$autogroup_nice" >/proc/self/autogroup 2>/dev/null
  true
}
trap on_exit EXIT

start_lunora() {
  server_dir=$(mktemp -d /tmp/lunora-bench-server.XXXXXX)
  local http rtmp
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
  LUNORA_RATELIMIT_STAFF_PER_MINUTE=0 \
  LUNORA_RATELIMIT_ANONYMOUS_PER_MINUTE=0 \
    nice -n "$nice_level" taskset -c "$server_cpu" "$lunora" serve >"$server_dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$http/api/v1/health/overall" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$server_dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  target_args=(--lunora-url "http://127.0.0.1:$http" --lunora-rtmp "rtmp://127.0.0.1:$rtmp/live"
               --admin-email "$admin_email" --admin-password "$admin_password")
}

run_one() { # scenario duration bench-args...
  local scenario=$1 duration=$2
  shift 2
  start_lunora
  echo "== $scenario: $*; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  nice -n "$nice_level" taskset -c "$gen_cpu" "$bench" run "${target_args[@]}" \
    --server-pid "$server_pid" --server-name lunora --scenario "$scenario" \
    --duration "$duration" --warmup "$warmup" --ramp-rate "$ramp" --stamp \
    --watch-dir "$server_dir" --json "$results" "$@" >/dev/null ||
    echo "bench: $scenario failed" >&2
  if grep -q '"level":"ERROR"' "$server_dir/server.log" 2>/dev/null; then
    echo "bench: server errors during $scenario (first 5):" >&2
    grep '"level":"ERROR"' "$server_dir/server.log" | head -5 >&2
  fi
  stop_server
}

for scenario in $scenarios; do
  case "$scenario" in
    latency)
      run_one "latency-ll-hls-$latency_profile" "$latency_duration" -n 1 -m "$latency_players" \
        --profile "$latency_profile" --hls ll --rejoin-every "$rejoin" ;;
    segments)
      run_one "latency-hls-$latency_profile" "$latency_duration" -n 1 -m "$latency_players" \
        --profile "$latency_profile" --hls segments --rejoin-every "$rejoin" --stall-after 4 ;;
    channels)
      for n in $channels; do
        run_one "channels-$n" "$channels_duration" -n "$n" -m 1 --profile 480p --hls ll --recording
      done ;;
    *) echo "bench: unknown scenario $scenario" >&2; exit 2 ;;
  esac
done

echo
"$bench" report "$results" | tee "$out/table.txt"
echo
echo "results: $results"

#!/usr/bin/env bash
# Cameras at scale: N cameras created by CSV import publish the 1 Mb/s clip (crates/bench,
# `lunora-bench cameras`) while C WebSocket clients listen on the organization's topic.
# Prints (and keeps in BENCH_OUT) the figures of BENCHMARKS.md "Cameras":
#   - GET /api/v1/cameras?limit=100 latency p50/p99/max while all of that runs;
#   - dashboard staleness: a publisher cut (or started again) → the first dashboard.update
#     showing it, as a listening client receives it;
#   - the server's CPU and memory, listeners dropped as too slow.
#
#   scripts/bench-cameras.sh                      1000 cameras, 200 clients
#   BENCH_CAMERAS=300 scripts/bench-cameras.sh    fewer on a busy machine
#
# Knobs (environment): BENCH_CAMERAS (1000), BENCH_CLIENTS (200), BENCH_DURATION (20 s of list
# requests), BENCH_FLAPS (5 cameras cut and restarted), BENCH_RAMP_RATE (200/s),
# BENCH_SERVER_CPU / BENCH_GEN_CPU (0 / 1), BENCH_NO_BUILD=1 (use the release binaries already
# built), BENCH_LUNORA_BIN / BENCH_GEN_BIN (other server / generator binaries), BENCH_OUT
# (results directory). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

cameras=${BENCH_CAMERAS:-1000}
clients=${BENCH_CLIENTS:-200}
duration=${BENCH_DURATION:-20}
flaps=${BENCH_FLAPS:-5}
ramp=${BENCH_RAMP_RATE:-200}
server_cpu=${BENCH_SERVER_CPU:-0}
gen_cpu=${BENCH_GEN_CPU:-1}
out=${BENCH_OUT:-$(mktemp -d /tmp/lunora-bench-cameras.XXXXXX)}
mkdir -p "$out"
admin_email=bench@example.com
admin_password='Bench-Cameras-Pass-1'

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
"$bench" media --profile 480p >/dev/null

server_dir=$(mktemp -d /tmp/lunora-bench-server.XXXXXX)
server_pid=""
on_exit() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  cp "$server_dir/server.log" "$out/server.log" 2>/dev/null || true
  rm -rf "$server_dir"
}
trap on_exit EXIT

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
  taskset -c "$server_cpu" "$lunora" serve >"$server_dir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do
  curl -fsS "http://127.0.0.1:$http/api/v1/health/overall" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$server_dir/server.log" >&2; exit 1; }
  sleep 0.1
done

echo "== $cameras cameras × 1 Mb/s, $clients WebSocket clients; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
taskset -c "$gen_cpu" "$bench" cameras \
  --lunora-url "http://127.0.0.1:$http" --lunora-rtmp "rtmp://127.0.0.1:$rtmp/live" \
  --admin-email "$admin_email" --admin-password "$admin_password" \
  --server-pid "$server_pid" -n "$cameras" --clients "$clients" --duration "$duration" \
  --flaps "$flaps" --ramp-rate "$ramp" | tee "$out/cameras.json"

python3 - "$out/cameras.json" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
off, on = r["offline_staleness_ms"], r["online_staleness_ms"]
print(f"cameras                  {r['cameras']} × {r['clip_mbps']:.2f} Mb/s, all online after {r['all_online_after_s']:.1f} s")
print(f"websocket clients        {r['ws_clients']} ({r['ws_clients_dropped']} dropped), {r['ws_messages_per_client']:.0f} messages each")
print(f"GET cameras?limit=100    p50 {r['list_p50_ms']:.1f} ms, p99 {r['list_p99_ms']:.1f} ms, max {r['list_max_ms']:.1f} ms ({r['list_requests']} requests)")
if off:
    print(f"dashboard, cut → update  median {statistics.median(off):.0f} ms, max {max(off)} ms ({off})")
if on:
    print(f"dashboard, back → update median {statistics.median(on):.0f} ms, max {max(on)} ms ({on})")
print(f"server                   {r['server_cores']:.2f} cores, {r['server_rss_mib']:.0f} MiB RSS")
PY
echo "results in $out" >&2

#!/usr/bin/env bash
# RTMP relay benchmark: the same scenarios against Lunora and against nginx-rtmp (one worker,
# 4096-byte chunks), one server at a time, each started fresh for each run and pinned to one
# core while the load generator (crates/bench, `lunora-bench`) is pinned to the other. Prints
# both side by side with the Lunora / nginx-rtmp ratio of CPU per delivered Gbit.
#
#   scripts/bench-relay.sh                 the full targets (a quarter of an hour)
#   BENCH_QUICK=1 scripts/bench-relay.sh   a tenth of the sizes, 10 s runs (a few minutes)
#
# Sizes and knobs (environment):
#   BENCH_SCENARIOS   which to run, in order (default: "fanout fanout-max many max")
#                       fanout      1 publisher of 1080p 6 Mb/s, BENCH_FANOUT_PLAYERS players (500)
#                       fanout-max  the same with BENCH_FANOUT_MAX_PLAYERS players (1000)
#                       many        BENCH_MANY_PUBLISHERS publishers of 720p 2.6 Mb/s, 1 player each (300)
#                       max         BENCH_MAX_PUBLISHERS publishers of 1 Mb/s, 1 player each (1000)
#   BENCH_SERVERS     "lunora nginx-rtmp" (either or both)
#   BENCH_DURATION    measured seconds per run (20; 10 when quick)
#   BENCH_RAMP_RATE   new connections per second while ramping up (200)
#   BENCH_SERVER_CPU / BENCH_GEN_CPU   cores for the server and the generator (0 / 1)
#   BENCH_NICE        scheduling priority of both (default -20 as root, so that other work on a
#                     shared machine, e.g. a build, does not eat into the measurement; 0 to not)
#   BENCH_OUT         directory for results (a new one under /tmp)
#   BENCH_NO_BUILD=1  use the release binaries already built
#   BENCH_LUNORA_BIN  another lunora binary to measure (e.g. a build from before a change)
#   BENCH_PERF=1      also sample the server with `perf record -e cpu-clock` during each run
#                     (perf.<scenario>.<server>.data in BENCH_OUT; `perf report -i` it);
#                     BENCH_PERF_ARGS adds options to `perf record`, e.g. -g for call graphs
# Test files are encoded once with FFmpeg into ~/.cache/lunora-bench (LUNORA_BENCH_CACHE).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=${BENCH_QUICK:-0}
scale() { if [ "$quick" = 1 ]; then echo $(( ($1 + 9) / 10 )); else echo "$1"; fi; }
fanout=${BENCH_FANOUT_PLAYERS:-$(scale 500)}
fanout_max=${BENCH_FANOUT_MAX_PLAYERS:-$(scale 1000)}
many=${BENCH_MANY_PUBLISHERS:-$(scale 300)}
max=${BENCH_MAX_PUBLISHERS:-$(scale 1000)}
if [ "$quick" = 1 ]; then duration=${BENCH_DURATION:-10}; else duration=${BENCH_DURATION:-20}; fi
scenarios=${BENCH_SCENARIOS:-"fanout fanout-max many max"}
servers=${BENCH_SERVERS:-"lunora nginx-rtmp"}
ramp=${BENCH_RAMP_RATE:-200}
if [ "$(id -u)" -eq 0 ]; then nice_level=${BENCH_NICE:--20}; else nice_level=${BENCH_NICE:-0}; fi
# With autogroup scheduling, nice only ranks processes of one session: raise this session's group.
# The group is the caller's session: put the old value back on exit.
autogroup_nice=""
if [ "$nice_level" != 0 ] && [ -w /proc/self/autogroup ]; then
  autogroup_nice=$(sed -n 's/.* nice //p' /proc/self/autogroup)
  echo "$nice_level" >/proc/self/autogroup 2>/dev/null || autogroup_nice=""
fi
server_cpu=${BENCH_SERVER_CPU:-0}
gen_cpu=${BENCH_GEN_CPU:-1}
out=${BENCH_OUT:-$(mktemp -d /tmp/lunora-bench-results.XXXXXX)}
mkdir -p "$out"
results="$out/results.jsonl"

admin_email=bench@example.com
admin_password='Bench-Relay-Pass-1'

for tool in taskset nginx ffmpeg curl; do
  command -v "$tool" >/dev/null || { scripts/deps.sh test; break; }
done
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || scripts/deps.sh test

target_dir=${CARGO_TARGET_DIR:-target}
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  [ -d web/dist ] || scripts/web.sh
  cargo build --release --locked -p lunora -p lunora-bench
fi
lunora=${BENCH_LUNORA_BIN:-$target_dir/release/lunora}
bench="$target_dir/release/lunora-bench"

# Thousands of sockets on both sides.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

for p in 1080p 720p 480p; do "$bench" media --profile "$p" >/dev/null; done

server_pid=""
server_dir=""
target_args=()

stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
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
    nice -n "$nice_level" taskset -c "$server_cpu" "$lunora" serve >"$server_dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$http/api/v1/health/overall" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$server_dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  target_args=(--lunora-url "http://127.0.0.1:$http" --lunora-rtmp "rtmp://127.0.0.1:$rtmp/live"
               --admin-email "$admin_email" --admin-password "$admin_password")
}

start_nginx() {
  server_dir=$(mktemp -d /tmp/lunora-bench-nginx.XXXXXX)
  local port
  port=$("$bench" free-port)
  cat >"$server_dir/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $server_dir/nginx.pid;
error_log $server_dir/error.log warn;
events { worker_connections 8192; }
rtmp {
  access_log off;
  server {
    listen 127.0.0.1:$port;
    chunk_size 4096;
    application live { live on; record off; }
  }
}
EOF
  nice -n "$nice_level" taskset -c "$server_cpu" nginx -p "$server_dir" -c "$server_dir/nginx.conf" &
  server_pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$server_dir/error.log" >&2; exit 1; }
    sleep 0.1
  done
  target_args=(--rtmp "rtmp://127.0.0.1:$port/live")
}

run_one() { # scenario server publishers players profile
  local scenario=$1 server=$2 n=$3 m=$4 profile=$5
  case "$server" in
    lunora) start_lunora ;;
    nginx-rtmp) start_nginx ;;
    *) echo "bench: unknown server $server" >&2; exit 2 ;;
  esac
  echo "== $scenario on $server: $n publisher(s) of $profile × $m player(s); load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  local perf_pid=""
  if [ "${BENCH_PERF:-0}" = 1 ]; then
    # The server and its children (nginx's worker, Lunora's FFmpeg helpers started by then).
    local pids
    pids=$(pgrep -d, -P "$server_pid" || true)
    perf record -q ${BENCH_PERF_ARGS:-} -e cpu-clock -F 999 -p "$server_pid${pids:+,$pids}" -o "$out/perf.$scenario.$server.data" \
      >/dev/null 2>&1 &
    perf_pid=$!
  fi
  nice -n "$nice_level" taskset -c "$gen_cpu" "$bench" run "${target_args[@]}" \
    --server-pid "$server_pid" --server-name "$server" --scenario "$scenario" \
    -n "$n" -m "$m" --profile "$profile" --duration "$duration" --ramp-rate "$ramp" \
    --json "$results" >/dev/null || echo "bench: $scenario on $server failed" >&2
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
  fi
  stop_server
}

for scenario in $scenarios; do
  for server in $servers; do
    case "$scenario" in
      fanout) run_one fanout "$server" 1 "$fanout" 1080p ;;
      fanout-max) run_one fanout-max "$server" 1 "$fanout_max" 1080p ;;
      many) run_one many "$server" "$many" 1 720p ;;
      max) run_one max "$server" "$max" 1 480p ;;
      *) echo "bench: unknown scenario $scenario" >&2; exit 2 ;;
    esac
  done
done

echo
"$bench" report "$results" | tee "$out/table.txt"
echo
echo "results: $results"

#!/usr/bin/env bash
# The README's second command: install what the tests need, start a private PostgreSQL, and run
# every test of the workspace against SQLite and PostgreSQL with the real peers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/web.sh

# A throwaway PostgreSQL cluster on a free loopback port, removed on exit.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pg_bin/initdb" ] || { echo "test: PostgreSQL server binaries not found" >&2; exit 1; }
pg_dir=$(mktemp -d /tmp/lunora-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$pg_dir"
  as_pg=(runuser -u postgres --)
fi
pg_port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
stop_pg() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_pg EXIT
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U lunora --auth=trust -E UTF8 >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=400" start >/dev/null
export LUNORA_TEST_POSTGRES_URL="postgres://lunora@127.0.0.1:$pg_port/postgres"

cargo test --workspace --locked --no-fail-fast "$@"

#!/usr/bin/env bash
# Builds the web UI into web/dist (embedded into the binary by the next cargo build).
set -euo pipefail
cd "$(dirname "$0")/../web"
command -v npm >/dev/null || { echo "web: Node.js with npm is required (apt-get install nodejs npm)" >&2; exit 1; }
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build >/dev/null

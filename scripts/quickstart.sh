#!/usr/bin/env bash
# From a fresh clone to a running syncer: dependencies, services, schema, a sample catalog (only
# into an empty catalog), then the syncer in the foreground (Ctrl-C stops it cleanly).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent services
npm run --silent migrate
npm run --silent seed -- --sample
echo "quickstart: syncing; try: curl -s 'http://127.0.0.1:9200/${ES_INDEX:-movies}/_search?q=title:star&size=3'" >&2
exec npm start

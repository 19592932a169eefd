#!/usr/bin/env bash
# From a fresh clone to a running syncer: dependencies, services, schema, a sample catalog, sync.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent services
npm run --silent migrate
if [ -f src/cli/seed.ts ]; then npm run --silent seed -- --sample; fi
exec npm start

#!/usr/bin/env bash
# Regenerates the dashboard's API client types from the gateway's OpenAPI document:
# dashboard/src/api/openapi.json (dumped from the FastAPI app) and dashboard/src/api/schema.ts
# (openapi-typescript). Both are committed; scripts/check_dashboard_api_current.sh fails when stale.
# Usage: gen_dashboard_api.sh [OUT_DIR]   (default: dashboard/src/api)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv_bin="${VENV_BIN:-$root/.venv/bin}"
out="${1:-$root/dashboard/src/api}"
mkdir -p "$out"
"$venv_bin/python" "$root/scripts/dump_openapi.py" > "$out/openapi.json"
[ -x "$root/dashboard/node_modules/.bin/openapi-typescript" ] || (cd "$root/dashboard" && npm ci --no-audit --no-fund >/dev/null)
"$root/dashboard/node_modules/.bin/openapi-typescript" "$out/openapi.json" -o "$out/schema.ts" >/dev/null 2>&1

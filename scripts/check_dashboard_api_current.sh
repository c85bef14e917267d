#!/usr/bin/env bash
# Fails when the committed dashboard API client (openapi.json, schema.ts) differs from what
# the gateway's current OpenAPI document generates (like check_proto_current.sh for stubs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/gen_dashboard_api.sh" "$tmp"
for f in openapi.json schema.ts; do
  if ! diff -q "$root/dashboard/src/api/$f" "$tmp/$f" >/dev/null; then
    echo "dashboard/src/api/$f is stale: run 'make dashboard-api' and commit the result." >&2
    exit 1
  fi
done

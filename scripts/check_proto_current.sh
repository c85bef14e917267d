#!/usr/bin/env bash
# Fails when the committed stubs differ from what the .proto sources generate.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/qpi/v1"
"$root/scripts/gen_proto.sh" "$tmp" >/dev/null 2>&1
if ! diff -r -q -x '__init__.py' -x '*.proto' -x '__pycache__' "$root/proto/qpi/v1" "$tmp/qpi/v1"; then
  echo "Generated stubs are stale: run 'make proto' and commit the result." >&2
  exit 1
fi

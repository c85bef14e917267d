#!/usr/bin/env bash
# Regenerates the Python stubs (messages, gRPC, mypy .pyi) next to the .proto sources.
# Generated files are committed; tests/unit/proto/test_generated_current.py fails when stale.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv_bin="${VENV_BIN:-$root/.venv/bin}"
out="${1:-$root/proto}"
cd "$root/proto"
rm -f "$out"/qpi/v1/*_pb2*.py "$out"/qpi/v1/*_pb2*.pyi
PATH="$venv_bin:$PATH" "$venv_bin/python" -m grpc_tools.protoc -I . \
  --python_out="$out" --grpc_python_out="$out" --mypy_out="$out" --mypy_grpc_out="$out" \
  qpi/v1/*.proto

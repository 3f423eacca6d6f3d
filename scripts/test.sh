#!/usr/bin/env bash
# Set up on a fresh machine, then run the whole test suite (CPU only), in two worker
# processes (pytest-xdist; a file's tests stay in one worker, so its module fixtures run
# once): much of the suite is single-threaded compiling, so two workers on two cores
# finish in about 80% of the time one takes. TEST_WORKERS=0 runs it in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
workers=${TEST_WORKERS:-2}
if [ "$workers" = 0 ]; then
  python -m pytest -q --durations=15 "$@"
else
  python -m pytest -q -n "$workers" --dist loadfile --durations=15 "$@"
fi

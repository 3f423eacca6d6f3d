#!/usr/bin/env bash
# Set up on a fresh machine, then run the whole test suite (CPU only).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
python -m pytest -q --durations=15 "$@"

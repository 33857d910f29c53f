#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the embedded demo: a teacher, then KD
# and AMKD students, on scikit-learn's digits; prints the results table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python tools/demo.py "$@"

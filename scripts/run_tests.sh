#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh tests
CUDA_VISIBLE_DEVICES= .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Evaluate a checkpoint on GPUS processes per node with torchrun (see
# dist_run.sh for the environment variables).
#
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# Without GPUs, run on CPU with gloo, one process per GPUS:
#   bash tools/dist_test.sh CONFIG CKPT 2 --cfg-options env_cfg.dist_cfg.backend=gloo
set -e

if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py args...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/dist_run.sh" "$3" test.py "$1" "$2" \
    --launcher pytorch "${@:4}"

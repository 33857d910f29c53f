#!/usr/bin/env bash
# Train on GPUS processes per node with torchrun (see dist_run.sh for the
# environment variables).
#
# Usage: bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# Without GPUs, run on CPU with gloo, one process per GPUS:
#   bash tools/dist_train.sh CONFIG 2 --cfg-options env_cfg.dist_cfg.backend=gloo
# On machines that may lose a process (preemption, a killed rank), let
# torchrun restart the group; it resumes from the newest checkpoint:
#   MAX_RESTARTS=3 bash tools/dist_train.sh CONFIG 8
set -e

if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [train.py args...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/dist_run.sh" "$2" train.py "$1" \
    --launcher pytorch "${@:3}"

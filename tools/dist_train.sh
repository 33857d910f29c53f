#!/usr/bin/env bash
# Train on GPUS processes per node with torchrun (torch.distributed.run).
#
# Usage: bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# Env:   NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1),
#        PYTHON (python): the interpreter that runs torchrun.
# Without GPUs, run on CPU with gloo, one process per GPUS:
#   bash tools/dist_train.sh CONFIG 2 --cfg-options env_cfg.dist_cfg.backend=gloo
set -e

if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [train.py args...]" >&2
    exit 2
fi

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"

#!/usr/bin/env bash
# Evaluate a checkpoint on GPUS processes per node with torchrun
# (torch.distributed.run).
#
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# Env:   NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1),
#        PYTHON (python): the interpreter that runs torchrun.
# Without GPUs, run on CPU with gloo, one process per GPUS:
#   bash tools/dist_test.sh CONFIG CKPT 2 --cfg-options env_cfg.dist_cfg.backend=gloo
set -e

if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py args...]" >&2
    exit 2
fi

CONFIG=$1
CHECKPOINT=$2
GPUS=$3
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
    "$(dirname "$0")/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"

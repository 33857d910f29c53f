#!/usr/bin/env bash
# Run a tool on NPROC processes per node with torchrun (torch.distributed.run);
# shared by dist_train.sh and dist_test.sh.
#
# Usage: bash tools/dist_run.sh NPROC TOOL [tool args...]
# Env:   NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1),
#        MAX_RESTARTS (0): times torchrun starts the group again after a
#        process died (tools/train.py then resumes from the newest
#        checkpoint), PYTHON (python): the interpreter that runs torchrun.
set -e

NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
MAX_RESTARTS=${MAX_RESTARTS:-0}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$1" \
    --max-restarts="$MAX_RESTARTS" \
    --master_port="$PORT" \
    "$(dirname "$0")/$2" "${@:3}"

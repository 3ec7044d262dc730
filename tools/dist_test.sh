#!/usr/bin/env bash
# Evaluate on GPUS processes of this node (torchrun), mmseg style:
#   bash tools/dist_test.sh CONFIG GPUS [tools/test.py options ...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
source "$(dirname "$0")/launcher_help.sh"
launcher_help "usage: bash tools/dist_test.sh CONFIG GPUS [tools/test.py options ...]" \
    "Runs tools/test.py CONFIG --launcher pytorch on GPUS processes of this node (torchrun); multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node." \
    2 "pass a config and the number of GPUs, e.g. bash tools/dist_test.sh configs/sclip_voc21.py 8" "$@"
if ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: GPUS must be a positive integer, not '$2'; e.g. bash tools/dist_test.sh configs/sclip_voc21.py 8" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
python -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/test.py" \
    "$CONFIG" \
    --launcher pytorch \
    "${@:3}"

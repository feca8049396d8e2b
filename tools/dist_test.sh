#!/usr/bin/env bash
# Evaluate on GPUS processes per node with torchrun; several nodes with NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT.
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --nproc_per_node="$GPUS" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
  "$(dirname "$0")/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"

#!/usr/bin/env bash
# Train on GPUS processes per node with torchrun; several nodes with NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT.
#   bash tools/dist_train.sh CONFIG GPUS [train.py options]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash tools/dist_train.sh CONFIG 8   # on the first node
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 bash tools/dist_train.sh CONFIG 8   # on the second node
set -euo pipefail
CONFIG=$1
GPUS=$2
exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --nproc_per_node="$GPUS" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
  "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"

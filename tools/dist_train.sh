#!/usr/bin/env bash
# Train on GPUS processes per node with torchrun; several nodes with NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT.
#   bash tools/dist_train.sh CONFIG GPUS [train.py options]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash tools/dist_train.sh CONFIG 8   # on the first node
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 bash tools/dist_train.sh CONFIG 8   # on the second node
# torchrun forwards SIGTERM, and here also SIGUSR1 (SLURM's --signal=USR1@SECONDS), to every rank, which then ends
# after its current iteration with a checkpoint (exit code 75; docs/training_at_scale.md); it waits SHUTDOWN_TIMEOUT
# seconds (default 600, torchrun's own 30) for that checkpoint before it kills the ranks.
set -euo pipefail
CONFIG=$1
GPUS=$2
exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --nproc_per_node="$GPUS" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
  --signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 --shutdown-timeout="${SHUTDOWN_TIMEOUT:-600}" \
  "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"

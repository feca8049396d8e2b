#!/usr/bin/env bash
# Train on a SLURM cluster; a job that reaches its time limit or is preempted requeues itself and resumes.
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
#   GPUS=16 GPUS_PER_NODE=8 TIME=24:00:00 bash tools/slurm_train.sh gpu cascade_t \
#       configs/coco/cascade_convnext_t.py work_dirs/cascade_t
# Submits itself with sbatch --requeue --signal=B:USR1@SIGNAL_LEAD (default 300 s). Inside the job, srun starts one
# tools/train.py --launcher slurm --resume auto per GPU. SIGNAL_LEAD seconds before the time limit the batch shell
# gets SIGUSR1 and passes it to the ranks, which finish the iteration, write its checkpoint and exit 75; the shell then
# requeues the job, whose next start continues from that checkpoint. At a preemption SLURM sends SIGTERM to the
# ranks (same path) and requeues the job itself (--requeue). Other variables: CPUS_PER_TASK (5), SRUN_ARGS,
# SBATCH_ARGS, PYTHON.
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$((GPUS < 8 ? GPUS : 8))}

if [[ -z "${SLURM_JOB_ID:-}" ]]; then  # on the login node: submit this script as the job
  mkdir -p "$WORK_DIR"
  # shellcheck disable=SC2086  # SBATCH_ARGS is a list of options
  exec sbatch --partition="$PARTITION" --job-name="$JOB_NAME" --nodes=$(((GPUS + GPUS_PER_NODE - 1) / GPUS_PER_NODE)) \
    --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --gres=gpu:"$GPUS_PER_NODE" \
    --cpus-per-task="${CPUS_PER_TASK:-5}" ${TIME:+--time="$TIME"} --requeue --open-mode=append \
    --signal=B:USR1@"${SIGNAL_LEAD:-300}" --output="$WORK_DIR/slurm-%j.out" ${SBATCH_ARGS:-} "$0" "$@"
fi

# the batch shell of the job: one task per GPU; a requeued start runs this again and resumes
# shellcheck disable=SC2086  # SRUN_ARGS is a list of options
srun --kill-on-bad-exit=1 ${SRUN_ARGS:-} "${PYTHON:-python}" -u "$(dirname "$0")/train.py" "$CONFIG" \
  --work-dir="$WORK_DIR" --launcher=slurm --resume=auto "${@:5}" &
STEP=$!
requeue() {
  echo "SIGUSR1: the time limit is near; the ranks write a checkpoint, then job $SLURM_JOB_ID is requeued"
  kill -USR1 "$STEP"  # srun passes it to every rank
  wait "$STEP" || true
  scontrol requeue "$SLURM_JOB_ID"
  exit 0
}
trap requeue USR1
trap 'wait "$STEP" || true' TERM  # preemption: the ranks got SIGTERM as well; let them write before the shell ends
wait "$STEP"

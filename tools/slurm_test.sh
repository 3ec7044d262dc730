#!/usr/bin/env bash
# Evaluate on a slurm cluster, mmseg style:
#   GPUS=16 bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG [tools/test.py options ...]
source "$(dirname "$0")/launcher_help.sh"
launcher_help "usage: GPUS=16 bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG [tools/test.py options ...]" \
    "Runs tools/test.py CONFIG --launcher slurm through srun on GPUS tasks (GPUS_PER_NODE per node, CPUS_PER_TASK CPUs each; SRUN_ARGS adds srun options)." \
    3 "pass a slurm partition, a job name and a config, e.g. bash tools/slurm_test.sh gpu sclip configs/sclip_voc21.py" "$@"
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
PY_ARGS=${@:4}
SRUN_ARGS=${SRUN_ARGS:-""}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    --gres=gpu:"${GPUS_PER_NODE}" \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    python -u "$(dirname "$0")/test.py" "${CONFIG}" --launcher="slurm" ${PY_ARGS}

#!/usr/bin/env bash
# mpisgd with mpirun/mpiexec, for machines and clusters without SLURM:
# synchronous SGD (ALGORITHM=sync by default) of an MLP on scikit-learn's digits.
#
#   bash jobs/demo_mpirun.sh            # 4 ranks
#   bash jobs/demo_mpirun.sh 2          # 2 ranks
#   bash jobs/demo_mpirun.sh 2 --epochs 1 --quiet   # extra flags go to `mpisgd train`
#   ALGORITHM=gossip bash jobs/demo_mpirun.sh 2
#
# Uses ./.venv unless a venv is active (VENV= skips activation, VENV=/path
# picks another), ${MPIEXEC:-mpiexec} and ${PYTHON:-python} from PATH, and
# METRICS (default runs/demo_mpirun_n<N>.jsonl). The mpiexec must belong to the
# MPI library mpi4py loads; the world-size check in jobs/launch.sh exits 3
# otherwise. Several hosts: put the launcher's flags in MPIEXEC_FLAGS
# [not tested here]:
#   MPICH / Intel MPI (Hydra): "-f hostfile -ppn 4 -bind-to core"
#   Open MPI:                  "--hostfile hostfile --map-by ppr:4:node --bind-to core"
set -euo pipefail

NP="${1:-4}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ "$NP" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [N_RANKS] [extra mpisgd train flags...]" >&2
    exit 2
fi

MPISGD_DIR="$(cd "$(dirname "$0")/.." && pwd)"
cd "$MPISGD_DIR"
if [[ -n "${VIRTUAL_ENV:-}" ]]; then VENV="${VENV-}"; fi   # keep the active venv
LAUNCHER=mpiexec
ALGORITHM="${ALGORITHM:-sync}"
METRICS="${METRICS:-runs/demo_mpirun_n${NP}.jsonl}"
source "$MPISGD_DIR/jobs/launch.sh"

#!/usr/bin/env bash
# mpisgd demo with mpirun/mpiexec: synchronous SGD on scikit-learn's digits.
#
#   bash jobs/demo_mpirun.sh            # 4 ranks
#   bash jobs/demo_mpirun.sh 2          # 2 ranks
#   bash jobs/demo_mpirun.sh 8 --epochs 2 --device cpu   # extra flags go to `mpisgd train`
#
# Works on a laptop / workstation (uses ./.venv if no venv is active; the
# `mpich` wheel's mpiexec runs more ranks than cores with no extra flags) and
# inside an interactive or batch allocation on a cluster with the site MPI.
#
# Environment:
#   MPIEXEC        launcher (default: mpiexec found on PATH)
#   PYTHON         interpreter (default: python found on PATH)
#   MPIEXEC_FLAGS  extra launcher flags, e.g. "-f hosts -ppn 4" (see below)
#   VENV           venv to activate when none is active (default: .venv; VENV= to skip)
#   METRICS        metrics file (default: runs/demo_mpirun_n<N>.jsonl)
#
# Launcher flags (put them in MPIEXEC_FLAGS):
#   MPICH / Intel MPI (Hydra):
#     -f hostfile           one host per line (or host:slots)
#     -ppn 4                processes per node
#     -bind-to core         pin each rank to a core
#   Open MPI:
#     --hostfile hostfile   lines "node01 slots=4"
#     -npernode 4           (Open MPI 5: --map-by ppr:4:node)
#     --bind-to core
#     --allow-run-as-root --oversubscribe
#                           needed when running as root and/or with more ranks
#                           than cores (added automatically below for root)
#   Open MPI environment worth setting on a single machine:
#     export OMPI_MCA_btl=^ofi   # otherwise each launch can take over a second
#     export OMPI_MCA_osc=^ucx   # silences an error line per one-sided window
#
# Never mix launchers: the mpiexec must belong to the MPI library mpi4py
# loads, or you get N independent worlds of size 1 (checked below).
set -euo pipefail

NP="${1:-4}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ "$NP" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [N_RANKS] [extra mpisgd train flags...]" >&2
    exit 2
fi

cd "$(dirname "$0")/.."

VENV="${VENV-.venv}"
if [[ -z "${VIRTUAL_ENV:-}" && -n "$VENV" && -f "$VENV/bin/activate" ]]; then
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
fi

MPIEXEC="${MPIEXEC:-mpiexec}"
PYTHON="${PYTHON:-python}"
METRICS="${METRICS:-runs/demo_mpirun_n${NP}.jsonl}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# export MPISGD_CUDA_AWARE=1   # only with a CUDA-aware MPI; default: host staging

read -r -a FLAGS <<< "${MPIEXEC_FLAGS:-}"
# Open MPI refuses to run as root and to oversubscribe cores unless told to.
if [[ "$(id -u)" == 0 ]] && "$MPIEXEC" --version 2>&1 | grep -qiE "open mpi|openrte|prte"; then
    FLAGS+=(--allow-run-as-root --oversubscribe)
fi
LAUNCH=("$MPIEXEC" -n "$NP" ${FLAGS[@]+"${FLAGS[@]}"})

# A launcher / MPI-library mismatch does not fail: it starts N independent
# worlds of size 1 that all exit 0. Make that an error here.
echo "launcher: ${LAUNCH[*]}  (OMP_NUM_THREADS=$OMP_NUM_THREADS)"
"${LAUNCH[@]}" "$PYTHON" -c '
import sys
from mpi4py import MPI
expected, comm = int(sys.argv[1]), MPI.COMM_WORLD
if comm.size != expected:
    print(f"mpisgd: MPI world has {comm.size} rank(s) but {expected} were asked for: "
          "this mpiexec does not belong to the MPI library mpi4py loads "
          "(see docs/install.md)", file=sys.stderr, flush=True)
    sys.exit(3)
if comm.rank == 0:
    print(f"MPI world size {comm.size} OK:", MPI.Get_library_version().splitlines()[0], flush=True)
' "$NP"

# `python -m mpi4py` makes an exception on any rank abort the whole job
# (the mpisgd CLI installs an abort hook too).
mkdir -p "$(dirname "$METRICS")"
"${LAUNCH[@]}" "$PYTHON" -m mpi4py -m mpisgd train \
    --algorithm sync --model mlp --dataset digits \
    --epochs 10 --batch-size 32 --lr 0.05 --seed 0 --threads "$OMP_NUM_THREADS" \
    --metrics "$METRICS" \
    "$@"

echo "metrics: $METRICS"

# shellcheck shell=bash
# The common part of every jobs/ script: sourced (not run) by the *.sbatch
# files and by demo_mpirun.sh after they set ALGORITHM. It
#   1. activates the venv and sets OMP_NUM_THREADS,
#   2. picks the launcher: srun --mpi=$MPI_PLUGIN (default inside a SLURM
#      job) or mpiexec (default outside one; LAUNCHER=mpiexec inside one),
#   3. checks that the MPI world has as many ranks as were started (exit 3),
#   4. runs `python -m mpisgd train --algorithm $ALGORITHM ...` with the
#      arguments the script got (a flag given twice: the later one wins),
#   5. with CHECKPOINT_DIR set: checkpoints there, adds --resume when
#      $CHECKPOINT_DIR/latest exists, and with REQUEUE=1 requeues the SLURM
#      job when the run exits 75 (preempted, checkpoint written).
# tests/test_slurm.py (a real one-node SLURM) and tests/test_jobs.py run every
# step; what they cannot check is marked [not tested here].
#
# Environment (all optional):
#   MPISGD_DIR    the mpisgd checkout (default: $SLURM_SUBMIT_DIR, or the
#                 directory above jobs/ for demo_mpirun.sh)
#   VENV          venv to activate (default: $MPISGD_DIR/.venv; VENV= to skip)
#   PYTHON        interpreter (default: python from PATH after activation)
#   LAUNCHER      srun or mpiexec (see above)
#   MPI_PLUGIN    srun --mpi= plugin: pmi2 (default; MPICH family, including
#                 the pip mpich wheel) or pmix (Open MPI)
#   MPIEXEC, MPIEXEC_FLAGS, NP   mpiexec, its extra flags, ranks (default
#                 $SLURM_NTASKS)
#   METRICS       metrics file (default: runs/<job id>.jsonl)
#   CHECKPOINT_DIR, CHECKPOINT_EVERY (default 60s), REQUEUE   see step 5
set -euo pipefail

if [[ -z "${ALGORITHM:-}" ]]; then
    echo "jobs/launch.sh: set ALGORITHM before sourcing it" >&2
    exit 2
fi

# --- 1. Software environment -----------------------------------------------
VENV="${VENV-$MPISGD_DIR/.venv}"
if [[ -n "$VENV" ]]; then
    if [[ ! -f "$VENV/bin/activate" ]]; then
        echo "jobs/launch.sh: no venv at $VENV (set VENV=/path/to/venv, or VENV= for the python on PATH)" >&2
        exit 2
    fi
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
fi
PYTHON="${PYTHON:-python}"
# One torch thread per rank unless --cpus-per-task asks for more: more threads
# than cores per rank makes training several times slower.
export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-1}}"
# CUDA-aware MPI: device buffers go to MPI directly only with
#   export MPISGD_CUDA_AWARE=1
# and only with an MPI built CUDA-aware; the default stages them through host
# memory. [not tested here: no GPU under SLURM in the tests]

# --- 2. Launcher ---------------------------------------------------------------
if [[ -n "${SLURM_JOB_ID:-}" ]]; then
    LAUNCHER="${LAUNCHER:-srun}"
    NP="${NP:-${SLURM_NTASKS:-${SLURM_NPROCS:-1}}}"
else
    LAUNCHER="${LAUNCHER:-mpiexec}"
    NP="${NP:-4}"
fi
case "$LAUNCHER" in
srun)
    # The plugin must match the MPI library mpi4py loads: pmi2 for MPICH,
    # MVAPICH, Intel MPI, Cray MPICH and the pip mpich wheel; pmix for Open
    # MPI (pmix: [not tested here]). --cpus-per-task is repeated because srun
    # does not take it from sbatch in every SLURM version; --kill-on-bad-exit=1
    # ends the step when a rank fails [both: not tested here].
    MPI_PLUGIN="${MPI_PLUGIN:-pmi2}"
    LAUNCH=(srun "--mpi=$MPI_PLUGIN" --kill-on-bad-exit=1 "--cpus-per-task=$OMP_NUM_THREADS")
    ;;
mpiexec)
    # Inside a SLURM job, MPICH's mpiexec (Hydra) starts its proxies as a job
    # step on the allocation's nodes (one node tested).
    MPIEXEC="${MPIEXEC:-mpiexec}"
    read -r -a FLAGS <<< "${MPIEXEC_FLAGS:-}"
    # Open MPI refuses to run as root and to oversubscribe cores unless told
    # to [not tested here: no Open MPI in the tests].
    if [[ "$(id -u)" == 0 ]] && "$MPIEXEC" --version 2>&1 | grep -qiE "open mpi|openrte|prte"; then
        FLAGS+=(--allow-run-as-root --oversubscribe)
    fi
    LAUNCH=("$MPIEXEC" -n "$NP" ${FLAGS[@]+"${FLAGS[@]}"})
    ;;
*)
    echo "jobs/launch.sh: LAUNCHER must be srun or mpiexec, not '$LAUNCHER'" >&2
    exit 2
    ;;
esac
echo "job ${SLURM_JOB_ID:-local} (restart ${SLURM_RESTART_COUNT:-0}): $ALGORITHM, $NP ranks," \
     "${SLURM_JOB_NUM_NODES:-1} node(s), ${LAUNCH[*]}, OMP_NUM_THREADS=$OMP_NUM_THREADS"

# --- 3. World size -------------------------------------------------------------
# A launcher that does not match the MPI library mpi4py loads does not fail:
# it starts NP separate worlds of size 1 that all exit 0. Make that an error.
"${LAUNCH[@]}" "$PYTHON" -c '
import sys
from mpi4py import MPI
expected, comm = int(sys.argv[1]), MPI.COMM_WORLD
if comm.size != expected:
    print(f"mpisgd: MPI world has {comm.size} rank(s) but {expected} were started: the launcher "
          "and the MPI library mpi4py loads do not match (see jobs/README.md)", file=sys.stderr, flush=True)
    sys.exit(3)
if comm.rank == 0:
    print(f"MPI world size {comm.size} OK:", MPI.Get_library_version().splitlines()[0], flush=True)
' "$NP"

# --- 4./5. Train ------------------------------------------------------------------
# Plain `python -m mpisgd` (its CLI aborts the whole job on an uncaught
# exception), not `python -m mpi4py -m mpisgd`: mpi4py's runner turns a rank's
# exit status 75 into MPI_Abort, which srun reports as 137, so the requeue
# below would never see 75.
METRICS="${METRICS:-runs/${SLURM_JOB_ID:-local}.jsonl}"
mkdir -p "$(dirname "$METRICS")"
TRAIN=("$PYTHON" -m mpisgd train --algorithm "$ALGORITHM" --model mlp --dataset digits
       --epochs 10 --batch-size 32 --lr 0.05 --seed 0 --threads "$OMP_NUM_THREADS" --metrics "$METRICS")
if [[ -n "${CHECKPOINT_DIR:-}" ]]; then
    TRAIN+=(--checkpoint-dir "$CHECKPOINT_DIR" --checkpoint-every "${CHECKPOINT_EVERY:-60s}")
    if [[ -e "$CHECKPOINT_DIR/latest" ]]; then
        TRAIN+=(--resume)
        echo "resuming from $CHECKPOINT_DIR"
    fi
fi
status=0
"${LAUNCH[@]}" "${TRAIN[@]}" "$@" || status=$?
echo "metrics: $METRICS (exit status $status)"
if [[ "$status" == 75 && -n "${REQUEUE:-}" && -n "${SLURM_JOB_ID:-}" ]]; then
    # Preempted with a checkpoint written: back to the queue (the job needs
    # --requeue); SLURM ends this script here and starts it again later.
    echo "requeueing job $SLURM_JOB_ID"
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"

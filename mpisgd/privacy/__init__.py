"""Differential privacy for every algorithm family (Xia et al., DP-PSAC, AAAI 2023; ALGORITHMS.md §10).

Privacy is a property of how each rank forms its update, not a new distributed algorithm:

- per-sample gradients ``g_i`` of the harness's models (``torch.func``: ``vmap`` of ``grad``);
- clipping rules, per-sample weights ``w(‖g_i‖)`` with ``‖w g_i‖ <= C``: constant clipping
  (DP-SGD), NSGD, Auto-S and DP-PSAC;
- Gaussian noise of standard deviation ``σC`` (``σ``: the noise multiplier) released once per
  global update, from one rank or split over the ranks; per node for gossip and master-worker;
- the accountant (:mod:`.accountant`): the ``(ε, δ)`` spent by ``T`` Poisson-subsampled Gaussian
  steps of sampling rate ``q``, from Opacus's RDP analysis or Google's ``dp-accounting`` PLD
  accountant, and the noise multiplier that meets a target ``ε``; :mod:`.calculator` is
  ``python -m mpisgd privacy`` on top of it.

The accountants need the ``privacy`` extra (``pip install 'mpisgd[privacy]'``: opacus, dp-accounting);
they are imported when first used, so importing this package is cheap.
"""

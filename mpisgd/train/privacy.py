"""A differentially private training run: its settings checked, its noise resolved, its ε accounted.

With ``--dp RULE`` every trainer forms its update from Poisson-sampled
per-sample gradients, each weighted by the clipping rule so that its norm is
at most C, plus Gaussian noise (:mod:`.private_step`). Which noise, and what
guarantee that gives, depends on what the algorithm releases:

- **central** (``sync``, the algorithms that average gradients every step):
  the ranks' noised sums are summed by the all-reduce, and the sum carries
  noise of standard deviation σC ("split": each rank adds N(0, σ²C²/p);
  "one": rank 0 adds it all). The guarantee is that of one DP-SGD over the
  union of the shards, with sampling rate q = (p B) / n.
- **per node** (every other algorithm: periodic averaging, gossip,
  master-worker): what a node sends is a function of its own noised steps,
  so every node adds the full N(0, σ²C²) to each of its steps and no node
  or server is trusted. Each sample lives on one node, so each sample gets
  the guarantee of that node's DP-SGD over its shard: the same q, σ and step
  count, hence the same ε, paid for with p times more noise per unit of
  signal than central noise.

ε is the accountant's (:class:`~mpisgd.privacy.ledger.PrivacyLedger`) for
the most steps any trainer took. ``--dp-epsilon`` picks σ for the planned
steps (on rank 0, then broadcast) and every step is checked against it.
"""

import warnings
from dataclasses import dataclass
from typing import Optional

from ..algorithm import Algorithm
from ..errors import UsageError
from ..privacy.ledger import PrivacyLedger, plan
from ..privacy.noise import SeededNoiseWarning
from ..privacy.per_sample import check_per_sample


def check_privacy(config, cls) -> None:
    """The combinations of DP settings no run can use (UsageError); called by ``TrainConfig.validate``."""
    if config.dp_noise is not None and config.dp_epsilon is not None:
        raise UsageError("--dp-noise and --dp-epsilon together: a budget chooses the noise itself; give one")
    if config.dp_noise is None and config.dp_epsilon is None:
        raise UsageError(f"--dp {config.dp} needs the noise: --dp-noise SIGMA or a budget --dp-epsilon EPSILON")
    if config.dp == "dpsgd" and config.dp_r is not None:
        raise UsageError("--dp-r is the regularizer of nsgd, autos and psac; dpsgd takes none")
    if config.local_optimizer != "sgd":
        raise UsageError(f"--dp works with --local-optimizer sgd: {config.local_optimizer} differentiates the "
                         "private gradient again, which the privacy analysis does not cover")
    if cls is not None and cls.report_loss is not Algorithm.report_loss:
        raise UsageError(f"{config.algorithm} shares the ranks' training losses (its leader choice), which the "
                         "privacy analysis does not cover: --dp does not apply to it")
    if config.dp_placement != "split" and not (cls is not None and cls.averages_gradients):
        raise UsageError(f"--dp-placement applies to the central noise of sync; {config.algorithm} noises "
                         "every node")


@dataclass
class PrivateRun:
    """The DP settings of one run, the same on every rank, and its ledger once the noise is known."""

    rule: str
    clip: float
    r: Optional[float]
    q: float  # sampling rate: expected global batch / n
    delta: float
    kind: str  # the accountant
    sampling: str  # "poisson" or "shuffle"
    central: bool  # noise added once to the gradient sum (sync) rather than on every node
    placement: str  # "split" or "one" (central), "each" (per node)
    batch_size: int
    virtual_batch: int
    planned_steps: int
    budget: Optional[float]
    seed: Optional[int]
    sigma: Optional[float] = None
    ledger: Optional[PrivacyLedger] = None

    @classmethod
    def of(cls, config, algorithm, model, n_train: int, trainers: int, planned_steps: int) -> "PrivateRun":
        """The run's settings from ``config``; UsageError for what this data or model cannot do."""
        q = config.batch_size * trainers / n_train
        if q > 1:
            raise UsageError(f"--batch-size {config.batch_size} on {trainers} trainers asks for more than the "
                             f"{n_train} training samples per step (sampling rate {q:.3g} > 1)")
        if config.dp_delta >= 1 / n_train:
            raise UsageError(f"--dp-delta {config.dp_delta:g} must be below 1/n = {1 / n_train:.3g} for the "
                             f"{n_train} training samples (a delta that large can publish a sample)")
        try:
            check_per_sample(model)
        except UsageError as error:
            raise UsageError(f"--model {config.model}: {error}") from None
        central = bool(algorithm.averages_gradients)
        return cls(rule=config.dp, clip=config.dp_clip, r=config.dp_r, q=q, delta=config.dp_delta,
                   kind=config.accountant, sampling=config.dp_sampling, central=central,
                   placement=config.dp_placement if central else "each", batch_size=config.batch_size,
                   virtual_batch=config.dp_virtual_batch, planned_steps=planned_steps, budget=config.dp_epsilon,
                   seed=config.dp_seed, sigma=config.dp_noise)

    def resolve(self, harness) -> None:
        """The noise multiplier (a budget's: planned on rank 0, broadcast) and the ledger, on every rank."""
        problem, sigma = "", self.sigma
        if sigma is None and harness.rank == 0:
            try:
                sigma = plan(self.budget, self.delta, self.q, self.planned_steps, self.kind)
            except UsageError as error:
                problem = f"--dp-epsilon {self.budget:g} over {self.planned_steps} steps: {error}"
        harness.check_all(not problem, problem, UsageError)
        self.sigma = harness.bcast_object(sigma)
        self.ledger = PrivacyLedger(self.q, self.sigma, self.delta, kind=self.kind, budget=self.budget,
                                    planned=self.planned_steps)
        if self.sampling == "shuffle" and harness.rank == 0:
            warnings.warn("--dp-sampling shuffle: the accountant analyses Poisson sampling; for shuffled "
                          "fixed-size batches its epsilon is a common heuristic, not a proven bound", stacklevel=2)
        if self.seed is not None and harness.rank == 0:
            warnings.warn(f"--dp-seed {self.seed}: the DP noise and sampling are reproducible, for tests only: "
                          "this run is NOT private", SeededNoiseWarning, stacklevel=2)

    @property
    def guarantee(self) -> str:
        return "central" if self.central else "per-node"

    def summary_fields(self, epsilon: float) -> dict:
        """The summary's privacy fields (ε: :meth:`PrivacyLedger.epsilon` of the most steps taken)."""
        return {"dp": self.rule, "epsilon_spent": epsilon, "delta": self.delta, "noise_multiplier": self.sigma,
                "sample_rate": self.q, "dp_clip": self.clip, "dp_r": self.r, "accountant": self.kind,
                "dp_sampling": self.sampling, "dp_guarantee": self.guarantee, "dp_placement": self.placement,
                "dp_budget": self.budget, "dp_seed": self.seed}

    def stop_message(self, steps: int) -> str:
        return (f"privacy budget: stopping after {steps} steps; one more would spend more than epsilon "
                f"{self.budget:g} (delta {self.delta:g})")

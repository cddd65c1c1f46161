"""The privacy spent by one DP run as it goes, and its budget: ``T`` steps at rate ``q`` and noise ``σ``.

A run fixes its sampling rate ``q`` and noise multiplier ``σ``; what grows is
the number of steps ``T``. :class:`PrivacyLedger` answers "what ε have ``T``
steps spent" (one accountant call per new ``T``, cached) and, for a run
given a budget ε_max, "may this run take step ``T``": a step is allowed only
if ε after it is still at most ε_max, so a run stops *before* it would exceed
its budget. :func:`plan` picks σ for a budget: the smallest noise multiplier
whose ε after the planned number of steps meets it
(:func:`~mpisgd.privacy.accountant.noise_multiplier_for`); the planned steps
are then known to be allowed, and the accountant is asked again only if a
run goes past them (e.g. resumed with more epochs).

Example::

    from mpisgd.privacy.ledger import PrivacyLedger, plan

    sigma = plan(epsilon=3.0, delta=1e-5, q=0.04, steps=250)      # the noise for a budget of 3
    ledger = PrivacyLedger(q=0.04, sigma=sigma, delta=1e-5, budget=3.0, planned=250)
    print(round(sigma, 3), ledger.allows(250), ledger.allows(400), round(ledger.epsilon(250), 3))
"""

from typing import Optional

from .accountant import Accountant, KINDS, check_delta, check_phase, noise_multiplier_for
from ..errors import UsageError


def plan(epsilon: float, delta: float, q: float, steps: int, kind: str = "rdp") -> float:
    """The smallest noise multiplier σ with ``ε(q, σ, steps) <= epsilon`` at this δ (UsageError if none)."""
    return noise_multiplier_for(epsilon, delta, q, steps, kind)


class PrivacyLedger:
    """ε spent after ``T`` steps of a run at sampling rate ``q``, noise multiplier ``sigma``, at ``delta``.

    ``kind``: the accountant (:data:`~mpisgd.privacy.accountant.KINDS`); ``budget``: the run's ε_max
    (None: no budget, every step allowed); ``planned``: a step count already known to fit the budget
    (the one :func:`plan` solved for), so that the run asks the accountant only beyond it.
    """

    def __init__(self, q: float, sigma: float, delta: float, *, kind: str = "rdp",
                 budget: Optional[float] = None, planned: int = 0):
        if kind not in KINDS:
            raise UsageError(f"unknown accountant {kind!r}; choose one of {', '.join(KINDS)}")
        self.q, self.sigma, _ = check_phase(q, sigma, 1)
        self.delta, self.kind, self.budget = check_delta(delta), kind, budget
        if budget is not None and not budget > 0:
            raise UsageError(f"the privacy budget epsilon must be positive, got {budget!r}")
        self._spent = {0: 0.0}  # steps -> ε, for the step counts asked so far
        self._allowed = planned if budget is not None else None  # steps known to fit the budget

    def epsilon(self, steps: int) -> float:
        """ε after ``steps`` steps (0 for none)."""
        if steps not in self._spent:
            accountant = Accountant(self.kind)
            accountant.step(self.q, self.sigma, steps)
            self._spent[steps] = accountant.epsilon(self.delta)
        return self._spent[steps]

    def allows(self, steps: int) -> bool:
        """Whether a run may have taken ``steps`` steps without exceeding its budget."""
        if self.budget is None or steps <= self._allowed:
            return True
        if self.epsilon(steps) <= self.budget:
            self._allowed = steps
            return True
        return False

    def state_dict(self, steps: int) -> dict:
        """The accountant's state after ``steps`` steps (its history of phases), for a checkpoint."""
        accountant = Accountant(self.kind)
        if steps:
            accountant.step(self.q, self.sigma, steps)
        return accountant.state_dict()

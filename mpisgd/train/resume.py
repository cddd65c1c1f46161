"""What a checkpoint holds of one rank's run, and how a freshly built run takes it back (``--resume``).

One rank's state (:func:`capture`):

- ``position``: the epoch, the steps already taken in it and their loss sum,
  and the run's step counter;
- the model (``state_dict``) and the distributed optimizer's state: the
  local optimizer's (momentum buffers) and the algorithm's (options,
  counters, snapshots, center variables, communication statistics; what
  was in flight completed first, :meth:`mpisgd.algorithm.Algorithm.state_dict`);
- the data sampler's position (its order and place in it) and every random
  stream (:mod:`.rngs`), except the DP noise and Poisson sampling streams of a
  private run: those are secret (PCG64 can be run backwards, so a saved state
  would reveal past noise and batches) and a resumed run draws fresh ones,
  unless ``--dp-seed`` made the run reproducible (tests);
- the run's clock (wall time so far, time to accuracy, the last evaluation),
  the privacy ledger's accountant state, and on rank 0 the length of the
  metrics file at that moment (a resumed run cuts the file back to it, so
  records of steps run again are not doubled).

A run continues bit for bit when its algorithm is deterministic given these
(no wall-clock decisions, no message timing): the synchronous family, and
the pairwise gossip algorithms with their fixed ``--gossip-seed``.
"""

from . import rngs
from ..errors import UsageError


def _secret(trainer) -> bool:
    """A private run's sampling and noise streams are secret (not seeded with --dp-seed)."""
    return trainer.privacy is not None and trainer.privacy.seed is None


def _streams(trainer) -> dict:
    """The objects whose random generators are saved (None where absent or secret)."""
    kept = trainer.privacy is not None and not _secret(trainer)
    step = trainer.local_step
    return {"algorithm": trainer.dist.algorithm, "optimizer": trainer.dist.optimizer,
            "sampler": getattr(step, "sampler", None) if kept else None,
            "noise": getattr(step, "noise", None) if kept else None}


def _sampler(trainer):
    """The data sampler whose position is saved (a secret one is not)."""
    sampler = getattr(trainer.local_step, "sampler", None)
    return sampler if hasattr(sampler, "state_dict") and not _secret(trainer) else None


def capture(trainer, position: dict) -> dict:
    """This rank's state at a step boundary (``position``: epoch, in_epoch, loss_sum, taken)."""
    sampler = _sampler(trainer)
    state = {
        "position": {**position, "step": trainer.step},
        "model": trainer.model.state_dict(),
        "optimizer": trainer.dist.state_dict(),
        "sampler": sampler.state_dict() if sampler is not None else None,
        "rngs": rngs.capture(_streams(trainer)),
        "clock": {"elapsed": trainer.budget.elapsed(), "reached_at": trainer.reached_at, "last": trainer.last},
        "metrics_length": trainer.records.metrics.length(),
    }
    if trainer.privacy is not None:
        state["privacy"] = {"sigma": trainer.privacy.sigma, "q": trainer.privacy.q,
                            "accountant": trainer.privacy.ledger.state_dict(trainer.step)}
    return state


def restore(trainer, state: dict) -> dict:
    """Put ``state`` back into a freshly built ``trainer``; returns its ``position``."""
    if trainer.privacy is not None:
        saved = state.get("privacy") or {}
        if (saved.get("sigma"), saved.get("q")) != (trainer.privacy.sigma, trainer.privacy.q):
            raise UsageError(f"--resume: the checkpoint's noise multiplier and sample rate "
                             f"({saved.get('sigma')}, {saved.get('q')}) differ from this run's "
                             f"({trainer.privacy.sigma}, {trainer.privacy.q}): resume with the same --dp "
                             "settings, --epochs and batch size")
    trainer.model.load_state_dict(state["model"])
    trainer.dist.load_state_dict(state["optimizer"])
    sampler = _sampler(trainer)
    if sampler is not None and state["sampler"] is not None:
        sampler.load_state_dict(state["sampler"])
    rngs.restore(_streams(trainer), state["rngs"])
    clock = state["clock"]
    trainer.budget.start -= clock["elapsed"]  # wall time goes on from where the checkpoint was
    trainer.reached_at, trainer.last = clock["reached_at"], clock["last"]
    position = dict(state["position"])
    trainer.step = position.pop("step")
    trainer.records.metrics.cut(state["metrics_length"])
    return position

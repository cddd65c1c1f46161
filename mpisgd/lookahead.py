"""The local variable x^i of the elastic algorithms: plain, or with EAMSGD's Nesterov look-ahead momentum.

EASGD's elastic force acts on each worker's variable x^i. With plain SGD the
parameters *are* x^i (:class:`LocalVariable`). EAMSGD (Zhang, Choromanska,
LeCun, NeurIPS 2015; ALGORITHMS.md §3.1, EAMSGD box) adds Nesterov momentum
delta (``local_momentum``) to x^i, the elastic force staying outside the
momentum::

    v <- delta v;  g = grad F(x + v);  x <- x + v - lr g;  v <- v - lr g

:class:`LookAheadMomentum` does it around the caller's *plain* SGD step (no
momentum of its own): it keeps v (``velocity``) and the true iterate x
(``iterate``) and leaves the look-ahead point y = x + delta v in the
parameters, where the caller's next gradient is taken. Derivation: the plain
step turns y_t into y' = x_t + delta v_t - lr g(y_t), which is x_{t+1} before
any elastic force; hence v_{t+1} = delta v_t - lr g = y' - x_t. So, around
each step:

- ``local_variable()``: x^i as it was before the step (the exchange's x^i);
- ``stepped()`` right after the plain step: ``v <- params - iterate``;
- the algorithm's elastic pull, if due, moves the parameters (not v: the
  pull is not momentum);
- ``look_ahead()``: ``iterate <- params``; ``params <- params + delta v``.

With delta = 0 every operation is plain EASGD's (the look-ahead adds 0),
bit for bit. Used by the synchronous (:mod:`mpisgd.collective.easgd`) and
the asynchronous (:mod:`mpisgd.masterworker.easgd`) EAMSGD.
"""

from .algorithm import Option, fraction

LOCAL_MOMENTUM = Option(0.99, "Nesterov momentum delta of each worker's variable (EAMSGD, the official code's "
                              "0.99; the local optimizer must be plain SGD, no momentum)", fraction)


class LocalVariable:
    """Mixin: the parameters are the worker's variable x^i (plain SGD steps); the hooks do nothing."""

    def local_variable(self):
        """x^i (the array the elastic exchange reads)."""
        return self.flat.params

    def stepped(self) -> None:
        """The caller's local step has run."""

    def look_ahead(self) -> None:
        """The elastic pull (if any) is done: the parameters are ready for the next gradient."""


class LookAheadMomentum(LocalVariable):
    """Mixin: EAMSGD's Nesterov momentum delta on x^i around a plain SGD step (see the module docstring).

    The class using it declares ``"local_momentum": LOCAL_MOMENTUM`` in its options, calls
    :meth:`start_look_ahead` where x^i lives, and saves ``LOOK_AHEAD_STATE`` with its state."""

    LOOK_AHEAD_STATE = ("velocity", "iterate")
    wraps_plain_sgd = True  # the harness refuses a local optimizer with momentum of its own (or AdaHessian)
    local_momentum_default = 0.0  # the harness's --momentum default: its momentum is local_momentum

    def start_look_ahead(self) -> None:
        """v = 0 and x = the parameters (the first look-ahead point is x itself)."""
        backend = self.flat.backend
        self.velocity = backend.zeros_like(self.flat.params)  # v
        self.iterate = backend.copy(self.flat.params)  # x (the parameters hold x + delta v)

    def local_variable(self):
        return self.iterate

    def stepped(self) -> None:
        self.velocity[...] = self.flat.params - self.iterate  # v <- delta v - lr g(x + delta v)

    def look_ahead(self) -> None:
        self.iterate[...] = self.flat.params
        self.flat.params += self.velocity * self.local_momentum  # the next gradient is taken at x + delta v

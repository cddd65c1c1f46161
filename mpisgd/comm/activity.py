"""What this rank is doing now: the one record read by the stall watchdog and written to the trace.

A process-wide :data:`STATE` says when this rank last made progress
(:func:`progress`: a training step done, a message handled) and what it
waits for: a blocking call (:func:`enter`/:func:`leave`, or the
:func:`waiting` context; which collective or request, with which peer or
tag, since when) or a polling loop (:class:`~mpisgd.comm.backoff.Backoff`,
whose idle polls stamp :func:`polling`). The places where mpisgd waits call
these hooks only when :data:`ON` is true, so with no watchdog and no trace
a wait costs one attribute read more. :data:`TRACE` is the timeline
recorder of ``--trace`` (:mod:`.trace`) or None.

Example (what the watchdog would print, without MPI)::

    >>> from mpisgd.comm import activity
    >>> activity.switch_on()
    >>> previous = activity.enter("Allreduce", "1024 bytes")
    >>> activity.describe().startswith("waiting in Allreduce (1024 bytes) since")
    True
    >>> activity.leave(previous)
    >>> activity.describe().startswith("not waiting in MPI")
    True
    >>> activity.switch_off()
"""

import time
from contextlib import contextmanager, nullcontext
from time import perf_counter

ON = False  # the hooks record only when True (the watchdog or a trace switched them on)
TRACE = None  # the --trace recorder (mpisgd.comm.trace.Recorder) or None
POLL_GONE_S = 1.0  # a polling loop not heard from for this long has ended (its sleeps are <= 0.1 s)
_NULL = nullcontext()


class State:
    """This rank's activity; times are ``perf_counter()`` seconds."""

    __slots__ = ("progress_at", "step", "waiting", "poll", "poll_first", "poll_last", "wall_offset")

    def __init__(self):
        self.progress_at = perf_counter()
        self.step = 0  # the last training step done
        self.waiting = None  # (what, detail, since) of the blocking call this rank is in
        self.poll = None  # the Backoff of the polling loop last heard from
        self.poll_first = self.poll_last = 0.0  # its first and last idle poll
        self.wall_offset = time.time() - perf_counter()  # perf_counter() + this = time.time()


STATE = State()


def switch_on() -> None:
    """Make the hooks record (the watchdog or the trace starts); now counts as progress."""
    global ON
    ON = True
    STATE.progress_at = perf_counter()


def switch_off() -> None:
    global ON, TRACE
    ON, TRACE = False, None


def progress(step: int = None) -> None:
    """This rank moved on (a step done, a message handled): the watchdog's clock starts over."""
    STATE.progress_at = perf_counter()
    if step is not None:
        STATE.step = step


def enter(what: str, detail: str = None):
    """A blocking wait begins; returns what :func:`leave` needs (the wait it is nested in)."""
    previous = STATE.waiting
    STATE.waiting = (what, detail, perf_counter())
    return previous


def leave(previous) -> None:
    """The blocking wait begun by the matching :func:`enter` ended (traced as a ``wait`` span)."""
    what, detail, since = STATE.waiting
    STATE.waiting = previous
    if TRACE is not None:
        TRACE.span(what, "wait", since, perf_counter(), detail)


@contextmanager
def _waiting(what, detail):
    previous = enter(what, detail)
    try:
        yield
    finally:
        leave(previous)


def waiting(what: str, detail: str = None):
    """``with waiting("Barrier"):`` around a blocking call (a no-op context while :data:`ON` is false)."""
    return _waiting(what, detail) if ON else _NULL


def polling(backoff) -> None:
    """An idle poll of ``backoff``'s loop (called by ``Backoff.idle`` while :data:`ON`)."""
    now, state = perf_counter(), STATE
    if state.poll is not backoff:
        flush_poll()
        state.poll, state.poll_first = backoff, now
    state.poll_last = now


def flush_poll() -> None:
    """Trace the polling loop last heard from as one ``wait`` span (from its first to its last idle poll)."""
    state = STATE
    if state.poll is not None and TRACE is not None:
        TRACE.span(state.poll.what, "wait", state.poll_first, state.poll_last, "polling")
    state.poll = None


def span(name: str, category: str = "compute"):
    """A traced span (``with span("forward"):``); a shared no-op context when no trace is on."""
    return _NULL if TRACE is None else TRACE.timed(name, category)


def posted(name: str, detail: str = None) -> None:
    """Communication was started (``Iallreduce``, ``Isend``): an instant ``comm-post`` event."""
    if TRACE is not None:
        TRACE.instant(name, "comm-post", perf_counter(), detail)


def clock(moment: float) -> str:
    """A ``perf_counter()`` moment as wall-clock time of day, ``HH:MM:SS.mmm``."""
    wall = moment + STATE.wall_offset
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall % 1 * 1000):03d}"


def describe(now: float = None) -> str:
    """What this rank waits for, in words: the innermost blocking call or a live polling loop, since when."""
    state, now = STATE, perf_counter() if now is None else now
    waiting, poll = state.waiting, state.poll
    if poll is not None and now - state.poll_last < POLL_GONE_S and (waiting is None or state.poll_first >= waiting[2]):
        what, detail, since = poll.what, "polling", state.poll_first
    elif waiting is not None:
        what, detail, since = waiting
    else:
        since = state.progress_at
        if poll is not None and state.poll_last > since:
            since = state.poll_last
        return f"not waiting in MPI: computing or stuck in user code since {clock(since)} ({now - since:.1f} s ago)"
    where = f"{what} ({detail})" if detail else what
    return f"waiting in {where} since {clock(since)} ({now - since:.1f} s ago)"

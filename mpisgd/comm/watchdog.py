"""The stall watchdog of ``--stall-timeout``: a rank that makes no progress says what it waits for, and the job ends.

A daemon thread per rank sleeps on an event (it never spins) and looks at
:data:`mpisgd.comm.activity.STATE` a few times per timeout. When the rank
has made no progress (no training step done, no message handled) for
``timeout`` seconds it prints one block to stderr::

    mpisgd: rank 1 (pid 4242, host node3): no progress for 3.0 s; waiting in Wait (Iallreduce: all-reduce
    of 10240 bytes over 2 ranks) since 12:03:04.512 (3.0 s ago); last step 5

or, for a rank that is not inside MPI, ``not waiting in MPI: computing or
stuck in user code since ...``. It then runs ``on_stall`` (the trace is
written), waits ``grace`` seconds so that the other stalled ranks print
their own block, and ends the process with status :data:`EXIT_STATUS`
without finalizing MPI; the launcher (``mpiexec``, ``srun``) then ends the
other ranks. mpi4py releases the GIL inside blocking MPI calls, so the
thread runs while the main thread is blocked in a collective (MPICH's
blocking calls spin on a core meanwhile: the watchdog needs no core of its
own, its wake-ups are rare). It calls no MPI, so any thread level works.

Example (``mpiexec -n 2 python -m mpi4py example.py``; ``timeout`` in seconds)::

    from mpi4py import MPI
    from mpisgd.comm import activity
    from mpisgd.comm.watchdog import Watchdog

    dog = Watchdog(600, MPI.COMM_WORLD.Get_rank()).start()
    for step in range(1, 4):
        MPI.COMM_WORLD.Barrier()     # a step's work
        activity.progress(step)      # a step done: the watchdog's clock starts over
    dog.stop()
    print("steps done:", activity.STATE.step)
"""

import os
import socket
import sys
import threading
from time import perf_counter

from . import activity

EXIT_STATUS = 4  # a stalled job's exit status (2 is a usage error, 1 an exception)


def stall_message(rank: int, idle: float, now: float = None) -> str:
    """The watchdog's block for this rank: who, for how long, what it waits for, its last step."""
    where = f"rank {rank} (pid {os.getpid()}, host {socket.gethostname()})"
    return (f"mpisgd: {where}: no progress for {idle:.1f} s; {activity.describe(now)}; "
            f"last step {activity.STATE.step}\n")


class Watchdog:
    """Ends the job when this rank makes no progress for ``timeout`` seconds (see the module's text).

    ``grace``: seconds between the message and the exit (default ``min(timeout, 5)``);
    ``on_stall``: called once, after the message, before the grace period (errors ignored);
    ``exit``: what ends the process (default ``os._exit``; tests may replace it).
    """

    def __init__(self, timeout: float, rank: int, *, grace: float = None, on_stall=None, exit=None,
                 stream=None):
        if not timeout > 0:
            raise ValueError(f"the stall timeout must be positive, got {timeout}")
        self.timeout, self.rank = float(timeout), rank
        self.grace = min(self.timeout, 5.0) if grace is None else grace
        self.on_stall, self.exit, self.stream = on_stall, exit or os._exit, stream
        self.check_every = min(1.0, max(0.05, self.timeout / 10))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="mpisgd-watchdog", daemon=True)
        self.fired = self.started = False

    def start(self) -> "Watchdog":
        """Switch the activity hooks on (now counts as progress) and start watching."""
        activity.switch_on()
        self.started = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (the run is over); returns once the thread has ended unless it is ending the job."""
        self._stop.set()
        if not self.fired and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.check_every):
            now = perf_counter()
            idle = now - activity.STATE.progress_at
            if idle >= self.timeout:
                self._fire(idle, now)
                return

    def _fire(self, idle: float, now: float) -> None:
        self.fired = True
        stream = self.stream or sys.stderr
        stream.write(stall_message(self.rank, idle, now))
        stream.flush()
        if self.on_stall is not None:
            try:
                self.on_stall()
            except Exception as error:  # the exit matters more than the extra
                stream.write(f"mpisgd: rank {self.rank}: after the stall: {error}\n")
                stream.flush()
        threading.Event().wait(self.grace)  # the other stalled ranks print theirs meanwhile
        self.exit(EXIT_STATUS)

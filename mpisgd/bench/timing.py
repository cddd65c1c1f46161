"""Fair timing of several variants in one MPI job.

A shared machine is noisy: another job, a turbo change or the OS can slow
down a stretch of seconds. Timing variant A for a while and then variant B
would charge that noise to one of them. :func:`interleave` therefore warms
every variant up, then measures them round by round, one sample each per
round, alternating the order (A B, B A, A B, ...) so that neither always
runs right after the other, and the benchmarks compare *medians*.

One sample is job-wide: all ranks leave a barrier together, run the
action, and the slowest rank's time counts (a data-parallel step is as
fast as its slowest rank).
"""

import statistics

from mpi4py import MPI


def job_time(comm, action) -> float:
    """Seconds ``action()`` takes on the slowest rank, all ranks starting together."""
    comm.Barrier()
    start = MPI.Wtime()
    action()
    elapsed = MPI.Wtime() - start
    return comm.allreduce(elapsed, op=MPI.MAX)


def together(comm) -> None:
    """Every rank of ``comm`` meets here; a waiting rank sleeps (a non-blocking barrier polled with a
    back-off), so that ranks left out of a run do not spin on cores the run needs."""
    from ..comm.backoff import Backoff

    request, backoff = comm.Ibarrier(), Backoff()
    while not request.Test():
        backoff.idle()


def interleave(comm, variants: dict, *, rounds: int, warmup: int = 1) -> dict:
    """Time each of ``variants`` (name -> action) ``rounds`` times, interleaved.

    Every action first runs ``warmup`` times untimed. Returns name -> list
    of job-wide seconds, one per round. All ranks must pass the same names
    in the same order (the actions are collective).
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    samples = {name: [] for name in names}
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else reversed(names):
            samples[name].append(job_time(comm, variants[name]))
    return samples


def summarize(seconds: list, work: float, rate_name: str) -> dict:
    """Median, spread and ``rate_name`` = ``work`` / median seconds, for one variant."""
    median = statistics.median(seconds)
    return {
        rate_name: work / median,
        "median_s": median,
        "min_s": min(seconds),
        "max_s": max(seconds),
        "samples": len(seconds),
        "work_per_sample": work,
    }


def ratio(numerator: dict, denominator: dict, rate_name: str) -> float:
    """Throughput of one summarized variant over another's (above 1: the first is faster)."""
    return numerator[rate_name] / denominator[rate_name]

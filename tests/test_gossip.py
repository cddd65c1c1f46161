"""The gossip family under real mpiexec: messaging layer, oracles, accuracy."""

import pytest
from mpirun import assert_ok, run_prog


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_messenger_outbox_inbox_slow_link_and_clean_exit(ranks):
    assert_ok(run_prog(ranks, "messenger.py"))


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_messenger_parts_each_on_their_own(ranks):
    """Outbox caps/replacement/drop, inbox receive/newest/receive_one/exchange, throttle FIFO timing, exit."""
    assert_ok(run_prog(ranks, "messenger_parts.py"))


def test_waiting_ranks_do_not_burn_a_core():
    """4 ranks on 2 cores: ranks waiting in close() for a late peer, and AD-PSGD active workers waiting
    for a slow passive one, use well under a quarter of a core (they spun at 33-50% before)."""
    result = run_prog(4, "waiting_ranks_idle.py", timeout=120)
    assert_ok(result)
    print(result.stdout)


def test_throttle_is_a_fifo_link_of_its_rate():
    from mpisgd.comm import Throttle

    link = Throttle(1000.0)  # bytes per second
    assert link.finished(now=0.0) is None and not link.busy
    link.start(3, 9, b"x" * 250, now=1.0)
    with pytest.raises(RuntimeError):
        link.start(4, 9, b"y", now=1.0)  # one message at a time
    assert link.finished(now=1.2499) is None and link.busy
    assert link.finished(now=1.25) == (3, 9, b"x" * 250) and not link.busy and link.transmitted == 1
    link.start(4, 9, b"y" * 10, now=2.0)
    assert link.drop() == 1 and not link.busy and link.drop() == 0
    for bad in (0, -1.0, True):
        with pytest.raises(ValueError):
            Throttle(bad)


def test_backoff_grows_resets_and_times_out():
    import time

    from mpisgd.comm import Backoff, MPISGDError

    backoff = Backoff(shortest=1e-4, longest=4e-4)
    intervals = []
    for _ in range(5):
        backoff.idle()
        intervals.append(backoff.interval)
    assert intervals == [1e-4, 2e-4, 4e-4, 4e-4, 4e-4]
    backoff.after(True)
    assert backoff.interval == 0.0
    start = time.perf_counter()
    backoff.after(False)
    assert time.perf_counter() - start < 0.05  # right after something happened: no real sleep
    waiting = Backoff(timeout=0.05, what="the test's wait")
    with pytest.raises(MPISGDError, match="the test's wait did not finish within 0.05 s"):
        while True:
            waiting.idle()


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_gossip_and_elastic_gossip_properties(ranks):
    """Consensus, convex combinations, no gossip when asked (the step-by-step oracles: test_oracle_gossip.py)."""
    assert_ok(run_prog(ranks, "gossip_properties.py"))


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_swift_divshare_adpsgd_oracles(ranks):
    assert_ok(run_prog(ranks, "async_oracles.py", timeout=120))


NON_IID = "dirichlet:0.3"  # 4 ranks training alone reach ~0.62 on it, sync ~0.96
WITH_NO_OP = ["gossip", "elastic-gossip", "adpsgd", "divshare", "swift"]  # progs/_mutations.py


@pytest.fixture(scope="module")
def non_iid_accuracy():
    """Digits, 4 ranks, 10 epochs, seed 0, non-IID: sync, each algorithm, and each with its averaging a no-op
    (training alone, then the one average of finish()); one job, so torch is imported once (~50 s)."""
    import json

    result = run_prog(4, "accuracy_gossip.py", NON_IID, 10, *WITH_NO_OP, timeout=400)
    assert_ok(result)
    return json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))[7:])


# Points below sync allowed on NON_IID. Synchronous rounds are deterministic (measured: gossip -3.1,
# elastic-gossip -1.4). Asynchronous runs depend on the ranks' relative pace (measured over 7 runs:
# divshare -0.6 to -1.1 and -8.4 once on a loaded machine, swift -4.4 to -8.9, adpsgd -3.6 to -10.9: its passive workers run ahead of the
# active ones, which wait for replies, and finish first); training alone is 33 points below.
CLOSE_TO_SYNC = {"gossip": 0.05, "elastic-gossip": 0.05, "divshare": 0.15, "adpsgd": 0.15, "swift": 0.15}


@pytest.mark.parametrize("algorithm", WITH_NO_OP)
def test_digits_accuracy_close_to_sync(non_iid_accuracy, algorithm):
    """On a partition where training alone fails, each algorithm ends close to sync (CLOSE_TO_SYNC)."""
    accuracy, sync = non_iid_accuracy[algorithm], non_iid_accuracy["sync"]
    assert sync - accuracy <= CLOSE_TO_SYNC[algorithm], (algorithm, accuracy, sync)


@pytest.mark.parametrize("algorithm", WITH_NO_OP)
def test_digits_accuracy_falls_short_without_averaging(non_iid_accuracy, algorithm):
    """The same run with the algorithm's averaging a no-op falls at least 25 points short of sync and
    15 short of the algorithm itself (measured: 0.624, 33 points below sync, 23 to 32 below the algorithms)."""
    off, on, sync = non_iid_accuracy[f"{algorithm}/off"], non_iid_accuracy[algorithm], non_iid_accuracy["sync"]
    assert sync - off >= 0.25 and on - off >= 0.15, (algorithm, off, on, sync)


def test_directed_topology_is_refused(tmp_path):
    from mpirun import mpisgd

    result = mpisgd(2, "train", "--algorithm", "gossip", "--topology", "exponential", "--quiet")
    assert result.returncode == 2 and "is directed" in result.stderr, result.output[-2000:]


@pytest.mark.parametrize("algorithm", ["swift", "divshare", "adpsgd"])
def test_straggler_and_time_budget_end_cleanly(algorithm):
    """One slow rank (3x slower steps, and an uplink throttled to 20 Mbit/s by a Throttle plugged in
    through ``mpisgd.train.run(..., throttle=...)``), a time budget: no deadlock, no leftover message
    (the exit protocol checks), and per-rank delivery and staleness in the summary."""
    import json

    result = run_prog(4, "train_throttled.py", algorithm, timeout=240)
    assert_ok(result)
    summary = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("SUMMARY "))[8:])
    assert summary["world_size"] == 4
    assert summary["wall_s"] < 60
    assert len(summary["delivery_per_rank"]) == 4 and len(summary["staleness_per_rank"]) == 4
    delivered = [d for d in summary["delivery_per_rank"] if d is not None]
    assert delivered and all(0 <= d <= 1 for d in delivered)
    assert summary["final_accuracy"] > 0.5


def test_divshare_delivers_the_fragments_it_sends():
    """Ω = 8 with H = 1: every fragment sent arrives (nothing dropped, delivery 1, the exit protocol
    accounting for every message); a rank behind a Throttle still sends at its link's pace,
    the newest fragments replacing older queued ones."""
    assert_ok(run_prog(4, "divshare_delivery.py", timeout=120))

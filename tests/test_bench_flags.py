"""The emulated cluster's and the training benchmarks' flags of issue 13: ``--stragglers SHARE:RATE,DELAY``,
``--partition dirichlet:ALPHA``, DivShare's ``--peers``/``--fragments`` sweep, ``--target-rmse``.

Bad values end with one line on stderr and status 2, before anything is
launched; good values reach the cluster spec and the runs.
"""

import argparse
import json
import re
import subprocess
import sys

import pytest

from mpisgd.bench import emulated
from mpisgd.bench.stragglers import divshare_variants
from mpisgd.bench.training import partition_of
from mpisgd.errors import UsageError
from test_bench import ROOT, run_bench

LINK = "20mbit,5ms"


def one_line_status_2(code, stdout, stderr, message):
    assert code == 2, (code, stderr)
    assert stdout == "" and stderr.strip().count("\n") == 0, stderr  # one line, no traceback, nothing launched
    assert message in stderr, stderr


@pytest.mark.parametrize("flags, message", [
    (["--stragglers", f"1.5:{LINK}"], "fraction of hosts must be in (0, 1), got 1.5"),
    (["--stragglers", f"17:{LINK}", "--ranks", "16"], "17 stragglers but 16 hosts"),
])
def test_bad_stragglers_end_the_benchmark(flags, message):
    one_line_status_2(*run_bench("stragglers", "--network", "100mbit,5ms", *flags, timeout=60), message)


@pytest.mark.parametrize("share, hosts, message", [
    ("1.0", 16, "fraction of hosts must be in (0, 1), got 1.0"),
    ("0.0", 16, "fraction of hosts must be in (0, 1), got 0.0"),
    ("-0.2", 16, "fraction of hosts must be in (0, 1), got -0.2"),
    ("abc", 16, "a fraction in (0, 1) or a count"),
    ("0", 16, "0 stragglers but 16 hosts"),
    ("5", 4, "5 stragglers but 4 hosts"),
    ("0.01", 16, "0.01 of 16 hosts rounds to no straggler"),
])
def test_bad_straggler_share(share, hosts, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        emulated.spec_of(_args(stragglers=f"{share}:{LINK}"), hosts)


@pytest.mark.parametrize("given, message", [
    ({"stragglers": LINK}, "expected SHARE:RATE,DELAY"),
    ({"stragglers": "0.12:20mbit"}, "expected RATE,DELAY"),
    ({"stragglers": f"0.5:{LINK}", "straggler": ["3:1mbit,1ms"]}, "host(s) 3 given by both"),
    ({"stragglers": f"0.5:{LINK}", "network": None}, "need --network"),
])
def test_bad_stragglers_flags(given, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        emulated.spec_of(_args(**given), 4)


def test_stragglers_need_network():
    one_line_status_2(*run_bench("gossip", "--stragglers", f"0.12:{LINK}", timeout=60), "need --network")


@pytest.mark.parametrize("benchmark, value", [("overlap", "dirichlet:0"), ("stragglers", "dirichlet:-1"),
                                              ("gossip", "dirichlet:abc"), ("scaling", "dirichlet:inf"),
                                              ("failures", "label-skew"), ("privacy", "dirichlet:0")])
def test_bad_partition_ends_every_training_benchmark(benchmark, value):
    """Every training benchmark takes --partition; ALPHA <= 0 (or not a number) is refused."""
    one_line_status_2(*run_bench(benchmark, "--partition", value, timeout=60), "--partition must be 'iid' or")


@pytest.mark.parametrize("value", ["dirichlet:0", "dirichlet:-0.5", "dirichlet:nan", "dirichlet:", "dirichlet"])
def test_bad_partition(value):
    with pytest.raises(UsageError, match="--partition must be 'iid' or 'dirichlet:ALPHA' with ALPHA > 0"):
        partition_of(argparse.Namespace(partition=value))


def test_good_partition():
    assert partition_of(argparse.Namespace(partition="dirichlet:0.1")) == "dirichlet:0.1"


def test_bad_divshare_sweep():
    one_line_status_2(*run_bench("stragglers", "--peers", "3,0", timeout=60), "--peers needs numbers of at least 1")
    with pytest.raises(UsageError, match="--fragments takes whole numbers"):
        divshare_variants("3", "2,x")


def _args(**given):
    return argparse.Namespace(**{"network": "100mbit,5ms", "straggler": None, "stragglers": None, **given})


@pytest.mark.parametrize("share, hosts, expected", [("0.12", 16, [14, 15]), ("0.12", 60, list(range(53, 60))),
                                                    ("2", 16, [14, 15]), ("0.5", 4, [2, 3]), ("4", 4, [0, 1, 2, 3])])
def test_stragglers_are_the_last_hosts(share, hosts, expected):
    """A fraction of the hosts, rounded (the DivShare artifact's 7 of 60 slow nodes is 0.12), or a count."""
    spec = emulated.spec_of(_args(stragglers=f"{share}:{LINK}"), hosts)
    assert sorted(spec.overrides) == expected
    assert all(link.rate_bps == 20e6 and link.delay_s == 5e-3 for link in spec.overrides.values())
    assert spec.network.rate_bps == 100e6 and spec.hosts == hosts
    assert emulated.straggler_ranks(_args(stragglers=f"{share}:{LINK}"), hosts) == ",".join(map(str, expected))


def test_stragglers_beside_a_named_straggler():
    spec = emulated.spec_of(_args(stragglers=f"1:{LINK}", straggler=["0:1mbit,50ms"]), 4)
    assert sorted(spec.overrides) == [0, 3] and spec.overrides[0].rate_bps == 1e6


def test_divshare_variants():
    assert divshare_variants("3", "2") == {"divshare": {"peers": 3, "fragments": 2}}
    sweep = divshare_variants("3,6", "1,10")
    assert list(sweep) == ["divshare-J3-O1", "divshare-J3-O10", "divshare-J6-O1", "divshare-J6-O10"]
    assert sweep["divshare-J6-O10"] == {"peers": 6, "fragments": 10}
    with pytest.raises(UsageError):
        divshare_variants("", "1")


def _train(*flags):
    result = subprocess.run([sys.executable, "-m", "mpisgd", "train", "--algorithm", "sync", "--model", "mf",
                             "--dataset", "synthetic-ratings", "--samples", "3000", "--batch-size", "64", "--quiet", *flags], capture_output=True, text=True,
                            cwd=ROOT, timeout=120, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    return result


def test_target_rmse(tmp_path):
    """--target-rmse: the time to the first evaluation whose test RMSE is at most the target, from the records."""
    metrics = tmp_path / "m.jsonl"
    result = _train("--epochs", "2", "--target-rmse", "5.0", "--metrics", str(metrics))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    summary = [r for r in records if r["event"] == "summary"][-1]
    first = next(r for r in records if r["event"] == "epoch" and r["rmse"] <= 5.0)
    assert summary["target_rmse"] == 5.0 and summary["time_to_accuracy_s"] == first["wall_s"]


def test_reached():
    """The target test of an evaluation record: accuracy at least --target-accuracy, RMSE at most --target-rmse."""
    from mpisgd.train import TrainConfig
    from mpisgd.train.summary import reached

    record = {"accuracy": 0.5, "rmse": 0.9}
    assert reached(TrainConfig(model="mf", target_rmse=0.9), record)
    assert not reached(TrainConfig(model="mf", target_rmse=0.89), record)
    assert not reached(TrainConfig(model="mf", target_rmse=1.0), {"accuracy": 0.5})  # no RMSE: not reached
    assert reached(TrainConfig(target_accuracy=0.5), record) and not reached(TrainConfig(target_accuracy=0.6), record)
    assert not reached(TrainConfig(model="mf", target_rmse=1.0, target_accuracy=0.6), record)  # both must hold
    assert not reached(TrainConfig(), record)


@pytest.mark.parametrize("fields, message", [({"target_rmse": 1.0}, "--target-rmse needs --model mf"),
                                            ({"model": "mf", "target_rmse": 0.0}, "--target-rmse must be positive")])
def test_bad_target_rmse(fields, message):
    from mpisgd.train import TrainConfig

    with pytest.raises(UsageError, match=re.escape(message)):
        TrainConfig(**fields).validate()


@pytest.mark.parametrize("quick", [False, True])
def test_every_suite_experiment_parses(quick, tmp_path):
    """``make bench``'s experiments: each command line is valid for its benchmark (flags, values, cluster)."""
    from mpisgd.bench.__main__ import BENCHMARKS, build_parser
    from mpisgd.bench.launch import DEFAULT_RANKS
    from mpisgd.bench.suite import EXPERIMENTS, command_of

    parser = build_parser()
    for name in EXPERIMENTS:
        command = command_of(name, tmp_path, quick)
        if command[2] != "mpisgd.bench":  # the cluster's own check
            continue
        args = parser.parse_args(command[3:])
        if emulated.wanted(args):
            emulated.spec_of(args, args.ranks or DEFAULT_RANKS)
        BENCHMARKS[args.benchmark].resolve_settings(args)

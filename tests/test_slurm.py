"""The jobs/ scripts under a real SLURM: a one-node cluster on loopback (tests/slurm_cluster.py).

Installs Debian's slurmctld, slurmd and slurm-client where they are missing (root and apt-get only;
skipped with the reason otherwise), submits the sbatch scripts with ``sbatch``, waits for each job
and checks it ended COMPLETED with a trained model in its metrics. Jobs take 2 ranks each and are
the cluster declares three times the machine's CPUs, so three run at once on a 2-core machine.
"""

import json
import os
import sys
import time
import warnings
from pathlib import Path

import pytest

from mpirun import PROGS, ROOT
from slurm_cluster import Cluster, ensure_slurm

EPOCHS = 3
MIN_ACCURACY = 0.6  # digits, 10 classes: chance is 0.1; 3 epochs of any of these reach about 0.8
RANKS = ["-N", "1", "--ntasks-per-node=2"]  # the 2-node scripts too: there is one node here

# (script, launcher, MPI_PLUGIN): srun with the pip mpich wheel under pmi2, and mpiexec (the wheel's
# Hydra) inside the allocation. The other 2-node scripts differ from these only in #SBATCH lines
# (tests/test_jobs.py).
FAMILY_JOBS = [
    ("collective.sbatch", "srun", "pmi2"),
    ("gossip.sbatch", "srun", "pmi2"),
    ("masterworker.sbatch", "srun", "pmi2"),
    ("masterworker-2nodes.sbatch", "mpiexec", ""),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = ensure_slurm()
    if reason:
        warnings.warn(f"SLURM tests skipped: {reason}")
        pytest.skip(reason)
    started = time.monotonic()
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        print(f"SLURM cluster up for {time.monotonic() - started:.1f} s", file=sys.stderr)


def job_env(**extra):
    """The environment sbatch exports to the job: this venv and this tree's mpisgd."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"MPISGD_DIR": str(ROOT), "VENV": sys.prefix, "PYTHONPATH": path, **extra}


def submit(cluster, workdir, script, *args, sbatch_flags=RANKS, **env):
    workdir.mkdir(parents=True, exist_ok=True)
    flags = [*sbatch_flags, f"--output={workdir}/%x-%j.out"]
    return cluster.sbatch(ROOT / "jobs" / script, *args, sbatch_flags=flags, env=job_env(**env), cwd=workdir)


def output(workdir) -> str:
    return "\n".join(path.read_text() for path in sorted(workdir.glob("*.out")))


def summary(path: Path) -> dict:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert records and records[-1]["event"] == "summary", path.read_text()[-2000:]
    return records[-1]


@pytest.fixture(scope="module")
def family_jobs(cluster, tmp_path_factory):
    """Every family's single- and multi-node script, submitted at once: {(script, launcher): (id, dir)}."""
    base = tmp_path_factory.mktemp("family-jobs")
    jobs = {}
    for script, launcher, plugin in FAMILY_JOBS:
        workdir = base / f"{script}-{launcher}"
        jobs[script, launcher] = submit(cluster, workdir, script, "--epochs", str(EPOCHS), "--quiet",
                                        LAUNCHER=launcher, MPI_PLUGIN=plugin), workdir
    return jobs


@pytest.fixture(scope="module")
def standin_requeue_job(cluster, tmp_path_factory):
    """jobs/requeue.sbatch with the stand-in trainer as a 1-minute job: --signal=USR1@60 fires at the
    controller's next time-limit check (every 30 s), so it is submitted first, to wait alongside the
    family jobs. (job id, its directory)."""
    workdir = tmp_path_factory.mktemp("standin-requeue")
    path = os.pathsep.join((str(PROGS / "requeue_standin"), job_env()["PYTHONPATH"]))
    return submit(cluster, workdir, "requeue.sbatch", sbatch_flags=[*RANKS, "--time=1"],
                  CHECKPOINT_DIR=str(workdir / "checkpoints"), PYTHONPATH=path), workdir


@pytest.mark.parametrize("script,launcher,plugin", FAMILY_JOBS)
def test_family_job_completes_and_trains(cluster, standin_requeue_job, family_jobs, script, launcher, plugin):
    job_id, workdir = family_jobs[script, launcher]
    record = cluster.wait(job_id, timeout=240)
    log = output(workdir)
    print(job_id, script, record["SubmitTime"], record["StartTime"], record["EndTime"], record["RunTime"])
    assert record["JobState"] == "COMPLETED" and record["ExitCode"] == "0:0", log + cluster.logs()
    assert "MPI world size 2 OK: MPICH" in log, log
    launch = f"srun --mpi={plugin}" if launcher == "srun" else "mpiexec -n 2"
    assert launch in log, log
    result = summary(workdir / "runs" / f"{job_id}.jsonl")  # the default metrics path
    assert result["world_size"] == 2 and result["epochs"] == EPOCHS, result
    assert result["final_accuracy"] >= MIN_ACCURACY, result


def test_world_size_check_fails_a_mismatched_launcher(cluster, tmp_path):
    """srun --mpi=none gives the pip MPICH no PMI: 2 worlds of size 1; the script must exit 3."""
    job_id = submit(cluster, tmp_path, "collective.sbatch", MPI_PLUGIN="none")
    record = cluster.wait(job_id, timeout=120)
    log = output(tmp_path)
    assert record["JobState"] == "FAILED" and record["ExitCode"] == "3:0", log
    assert "MPI world has 1 rank(s) but 2 were started" in log, log
    assert not (tmp_path / "runs").exists(), "trained after the check failed"


PROBE_JOB = """#!/bin/bash
trap 'echo "batch shell got SIGUSR1"' USR1
source "$VENV/bin/activate"
if [[ $LAUNCHER == srun ]]; then
    srun --mpi=pmi2 python {probe} "$PROBE_DIR" "$PROBE_WAIT" &
else
    mpiexec -n 2 python {probe} "$PROBE_DIR" "$PROBE_WAIT" &
fi
until wait $!; do :; done  # a trapped signal interrupts wait
"""


@pytest.mark.parametrize("launcher,scancel_flags,ranks_get_it,shell_gets_it", [
    ("srun", [], True, False),
    ("mpiexec", [], True, False),  # Hydra's proxies run as a job step and pass the signal on
    ("srun", ["--batch"], False, True),  # what --signal=B:USR1@T does
])
def test_which_processes_a_signal_reaches(cluster, tmp_path, launcher, scancel_flags, ranks_get_it,
                                          shell_gets_it):
    """`scancel --signal=USR1` (like `#SBATCH --signal=USR1@T`) reaches every rank under srun and under
    mpiexec, not the batch shell; with --batch (`--signal=B:USR1@T`) only the batch shell."""
    script = tmp_path / "probe.sh"
    script.write_text(PROBE_JOB.format(probe=PROGS / "signal_probe.py"))
    flags = [*RANKS, f"--output={tmp_path}/probe.out"]
    job_id = cluster.sbatch(script, sbatch_flags=flags, cwd=tmp_path,
                            env=job_env(LAUNCHER=launcher, PROBE_DIR=str(tmp_path),
                                        PROBE_WAIT="30" if ranks_get_it else "4"))
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready.*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    cluster.run("scancel", "--signal=USR1", *scancel_flags, job_id)
    record = cluster.wait(job_id, timeout=60)
    log = (tmp_path / "probe.out").read_text()
    assert record["JobState"] == "COMPLETED", log
    for rank in (0, 1):
        assert f"rank {rank} got {'SIGUSR1' if ranks_get_it else 'nothing'}" in log, log
    assert ("batch shell got SIGUSR1" in log) == shell_gets_it, log


def run_preempted(cluster, workdir, *args):
    """Submit jobs/requeue.sbatch, wait for its first checkpoint, send USR1 to its ranks as
    `--signal=USR1@60` would, and wait for the requeued job to end: (record, log, metrics path)."""
    checkpoints = workdir / "checkpoints"
    job_id = submit(cluster, workdir, "requeue.sbatch", *args, CHECKPOINT_DIR=str(checkpoints))
    deadline = time.monotonic() + 120
    while not (checkpoints / "latest").exists():
        assert time.monotonic() < deadline, f"no checkpoint after 120 s\n{output(workdir)}"
        assert cluster.job(job_id)["JobState"] in ("PENDING", "RUNNING"), output(workdir)
        time.sleep(0.2)
    cluster.run("scancel", "--signal=USR1", job_id)
    return cluster.wait(job_id, timeout=180), output(workdir), workdir / "runs" / f"{job_id}.jsonl"


def assert_requeued_once(record, log):
    assert record["JobState"] == "COMPLETED" and record["ExitCode"] == "0:0", log
    assert record["Restarts"] == "1", record
    assert log.count("requeueing job") == 1 and log.count("resuming from") == 1, log
    assert log.index("requeueing job") < log.index("resuming from"), log


def test_requeue_script_control_flow(cluster, standin_requeue_job):
    """With a stand-in trainer (tests/progs/requeue_standin: the preemption contract only), the time
    limit's --signal=USR1@60 reaches the ranks, they exit 75, the script requeues the job, and the
    second run gets --resume and completes."""
    job_id, workdir = standin_requeue_job
    record = cluster.wait(job_id, timeout=180)
    assert_requeued_once(record, output(workdir))
    metrics = (workdir / "runs" / f"{job_id}.jsonl").read_text()
    events = [json.loads(line)["event"] for line in metrics.splitlines()]
    assert events == ["start", "preempted", "resumed", "summary"], events
    assert '"signal": "SIGUSR1"' in metrics


def test_requeued_training_resumes_and_completes(cluster, tmp_path):
    """The real trainer: checkpoint every 20 steps, USR1 after the first one, requeue, resume, finish."""
    epochs = 20
    record, log, metrics = run_preempted(cluster, tmp_path, "--epochs", str(epochs), "--checkpoint-every", "20",
                                         "--slow-ranks", "0,1", "--slow-factor", "20", "--quiet")
    assert_requeued_once(record, log)
    result = summary(metrics)
    assert result["world_size"] == 2 and result["epochs"] == epochs, result
    assert result["final_accuracy"] >= MIN_ACCURACY, result
    events = [json.loads(line)["event"] for line in metrics.read_text().splitlines()]
    assert events.count("start") == 1 and events.count("resume") == 1 and events[-1] == "summary", events

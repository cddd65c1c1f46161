"""A throwaway one-node SLURM cluster on loopback, for the tests of jobs/.

``ensure_slurm()`` installs Debian's ``slurmctld slurmd slurm-client`` where they are missing
(root and apt-get only) and returns None, or the reason it cannot. ``Cluster(directory)`` writes a
slurm.conf into ``directory`` (its own state and spool directories, pid and log files, free ports,
``AuthType=auth/none``), starts slurmctld and slurmd in the foreground (``-D``) as child processes,
and ``stop()`` ends exactly those two processes by their ids. Jobs are followed with
``scontrol show job -o`` (no accounting database: ``MinJobAge`` keeps finished jobs' records).
"""

import getpass
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("slurmctld", "slurmd", "sbatch", "scontrol", "srun", "scancel")
PACKAGES = ("slurmctld", "slurmd", "slurm-client")
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                "BOOT_FAIL", "DEADLINE", "PREEMPTED"}


def _missing():
    return [name for name in DAEMONS if shutil.which(name) is None
            and not Path("/usr/sbin", name).exists()]


def ensure_slurm(timeout: float = 300):
    """Install SLURM where it is missing; None when it is there, else why it cannot be."""
    if not _missing():
        return None
    if os.geteuid() != 0:
        return f"SLURM is not installed ({', '.join(_missing())} missing) and installing it needs root"
    if shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get to install it"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    command = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if result.returncode != 0:  # the package lists may be missing on a fresh machine
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=timeout)
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if result.returncode != 0 or _missing():
        return f"could not install {' '.join(PACKAGES)}: {result.stderr.strip()[-300:]}"
    return None


def _free_ports(count: int):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _daemon(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class Cluster:
    """One node (this host, ``hostname -s``) in partition ``debug``.

    It declares ``cpus`` CPUs (default: three times the machine's, ``SlurmdParameters=config_overrides``
    lets slurmd accept more than it has), so that three 2-rank jobs run at once on a 2-core machine.
    Job ids start at a random number: MPICH under srun names its shared-memory segment from the job
    and step id, and a killed job's leftover ``/dev/shm/mpich_shm_*`` made a later cluster's job of the
    same id fail in MPI_Init ("UCX ERROR failed to unpack address, invalid bandwidth 0.00").
    """

    def __init__(self, directory: Path, cpus: int = None):
        self.dir = Path(directory)
        self.node = socket.gethostname().split(".")[0]  # slurmd refuses a NodeName that is not `hostname -s`
        self.cpus = cpus or 3 * os.cpu_count()
        self.conf = self.dir / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.processes = []

    def write_conf(self) -> None:
        for sub in ("state", "spool"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        ctld_port, d_port = _free_ports(2)
        d = self.dir
        self.conf.write_text(f"""\
ClusterName=mpisgdtest
FirstJobId={random.randint(10_000, 60_000_000)}
SlurmctldHost={self.node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
AuthInfo=cred_expire=5
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=3600
KillWait=5
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
SlurmdParameters=config_overrides
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} State=UNKNOWN
PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def start(self, timeout: float = 60) -> None:
        """Start slurmctld and slurmd; return once the node takes jobs."""
        self.write_conf()
        for name in ("slurmctld", "slurmd"):
            log = open(self.dir / f"{name}.stdout", "w")
            self.processes.append(subprocess.Popen(
                [_daemon(name), "-D", "-f", str(self.conf)] + (["-i"] if name == "slurmctld" else []),
                stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True))
        deadline, pause = time.monotonic() + timeout, 0.1
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip()
            if state in ("idle", "mix", "alloc"):
                return
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args[0]} exited: {self.logs()}")
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)
        raise RuntimeError(f"the SLURM node did not come up within {timeout} s: {self.logs()}")

    def stop(self) -> None:
        """Cancel every job still there (a failed test's job would go on running after its slurmd),
        then end the daemons this cluster started, by their process ids."""
        if any(process.poll() is None for process in self.processes):
            try:
                self.run("scancel", "--user", getpass.getuser(), check=False, timeout=30)
                deadline = time.monotonic() + 30
                while self.run("squeue", "--noheader", check=False, timeout=30).stdout.strip() \
                        and time.monotonic() < deadline:
                    time.sleep(0.5)
            except (OSError, subprocess.SubprocessError):
                pass  # the daemons are ended below in any case
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
                         for path in sorted(self.dir.glob("slurm*.log")) + sorted(self.dir.glob("*.stdout")))

    def run(self, *command, check=True, timeout=60, **kwargs):
        result = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                                env={**self.env, **kwargs.pop("env", {})}, timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, command))}: {result.stdout}{result.stderr}")
        return result

    def sbatch(self, script, *args, sbatch_flags=(), env=None, cwd=None) -> str:
        """Submit ``script`` with ``args``; the job id."""
        result = self.run("sbatch", "--parsable", *sbatch_flags, script, *args, env=env or {}, cwd=cwd)
        return result.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict:
        """``scontrol show job -o`` as a dict (JobState, ExitCode, Restarts, ...)."""
        line = self.run("scontrol", "show", "job", "-o", job_id).stdout.strip()
        return dict(part.split("=", 1) for part in line.split() if "=" in part)

    def wait(self, job_id: str, timeout: float = 120, until=None) -> dict:
        """Poll (with backoff) until the job is in a final state, or ``until(record)`` is true."""
        deadline, pause = time.monotonic() + timeout, 0.2
        while True:
            record = self.job(job_id)
            if (until(record) if until else record.get("JobState") in FINAL_STATES):
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {record.get('JobState')} after {timeout} s")
            time.sleep(pause)
            pause = min(pause * 1.5, 2.0)

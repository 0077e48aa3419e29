"""A throwaway single-node SLURM cluster on this machine, for tests: munged, slurmctld and slurmd started as
root from Debian's packages (`apt-get install slurmctld slurmd slurm-client munge`), everything they write
(munge key and socket, slurm.conf, state, spool, logs) under one temporary folder, on free ports.

Nothing under /etc is changed, and neither the system's munge key nor a system slurm.conf is used: clients
find this cluster through SLURM_CONF (see `LocalSlurm.env`), and its slurm.conf names its own munge socket. `stop()` cancels what is left, stops the daemons
and every process that was started with this cluster's SLURM_CONF in its environment (job steps included),
and nothing else.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "srun", "sinfo", "scontrol", "scancel")
INSTALL = "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"


def missing_requirements() -> str | None:
    """Why a local cluster cannot be started here (with how to fix it), or None."""
    if os.geteuid() != 0:
        return ("starting munged, slurmctld and slurmd needs root: run the test as root "
                "(`sudo -E .venv/bin/python -m pytest tests/cluster`, or in CI's container)")
    absent = [tool for tool in DAEMONS + CLIENTS if shutil.which(tool, path=_PATH) is None]
    if absent:
        return f"SLURM or munge is not installed ({', '.join(absent)} missing): {INSTALL}"
    return None


# the daemons live in sbin, which a non-login PATH may lack
_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])


def _free_ports(n: int) -> list[int]:
    """n distinct ports nothing listens on now (held open together, so they differ)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class LocalSlurm:
    """with LocalSlurm(tmp) as cluster: ... cluster.env is the environment for sbatch/squeue/snakemake."""

    def __init__(self, root: Path, cpus: int = 2, partition: str = "debug", min_job_age: int = 300):
        self.root = Path(root)
        self.cpus = cpus
        self.partition = partition
        self.min_job_age = min_job_age
        self.node = "node1"
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.memory_mb = _memory_mb()
        self._daemons: list[tuple[str, subprocess.Popen]] = []
        self.bin = self.root / "bin"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf),
                    "PATH": os.pathsep.join([str(self.bin), _PATH])}

    # -- set-up -----------------------------------------------------------------------------------------
    def _write_files(self):
        os.chmod(self.root, 0o755)  # munged wants its socket's folders searchable by all
        munge = self.munge_socket.parent
        munge.mkdir(parents=True, mode=0o755)
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(mode=0o755)
        subprocess.run(["mungekey", "--create", "--keyfile", str(munge / "munge.key")], env=self.env,
                       check=True, capture_output=True)
        os.chmod(munge / "munge.key", 0o600)
        host = socket.gethostname().split(".")[0]
        ctld_port, slurmd_port = _free_ports(2)
        r = self.root
        self.conf.write_text("\n".join([
            "# written by tests/cluster/local_slurm.py: one node, no accounting, no cgroups",
            "ClusterName=torchkata-test",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={r}/state",
            f"SlurmdSpoolDir={r}/spool",
            f"SlurmctldPidFile={r}/slurmctld.pid",
            f"SlurmdPidFile={r}/slurmd.pid",
            f"SlurmctldLogFile={r}/log/slurmctld.log",
            f"SlurmdLogFile={r}/log/slurmd.log",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU_Memory",
            "ReturnToService=2",
            # squeue must still list a finished job when snakemake next polls (the plugin's default check
            # is 40 s after submission, and it falls back to sacct when MinJobAge < 3 x that)
            f"MinJobAge={self.min_job_age}",
            "SchedulerParameters=sched_interval=1",  # start a queued job at once, not at the next minute
            # the node is what this file says, whatever slurmd detects (containers report odd topologies)
            "SlurmdParameters=config_overrides",
            f"NodeName={self.node} NodeAddr=127.0.0.1 NodeHostname={host} CPUs={self.cpus} "
            f"RealMemory={self.memory_mb} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        # A real cluster's slurm.conf sits where the tools look by default (/etc/slurm); this one is found
        # through SLURM_CONF, which the jobstep plugin (0.6.1) strips from the environment of the `srun` it
        # starts inside each job. This srun, first on the jobs' PATH (sbatch exports it), puts it back.
        self.bin.mkdir()
        srun = self.bin / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {shutil.which("srun", path=_PATH)} "$@"\n')
        srun.chmod(0o755)

    def _spawn(self, name: str, args: list[str]):
        log = open(self.root / "log" / f"{name}.out", "wb")
        process = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self._daemons.append((name, process))
        return process

    def _wait(self, what: str, ready, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self._daemons:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode} while waiting for {what}:\n"
                                       + self.logs())
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"{what} not ready after {timeout:.0f} s:\n" + self.logs())

    def client(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout)

    def start(self, timeout: float = 90) -> "LocalSlurm":
        self._write_files()
        munge = self.munge_socket.parent
        self._spawn("munged", ["munged", "--foreground", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={munge / 'munge.key'}", f"--pid-file={munge / 'munged.pid'}",
                               f"--log-file={self.root / 'log' / 'munged.log'}",
                               f"--seed-file={munge / 'munged.seed'}"])
        self._wait("munged", self.munge_socket.exists, timeout)
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: self.client("scontrol", "ping").returncode == 0, timeout)
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf)])
        self._wait(f"node {self.node} idle", self._node_idle, timeout)
        return self

    def _node_idle(self) -> bool:
        result = self.client("sinfo", "--noheader", "--nodes", self.node, "--format", "%T")
        return result.returncode == 0 and result.stdout.strip() == "idle"

    # -- use ---------------------------------------------------------------------------------------------
    def logs(self, tail: int = 40) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            lines = path.read_text(errors="replace").splitlines()[-tail:]
            parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def queue(self) -> str:
        return self.client("squeue", "--noheader", "--format", "%i %j %T").stdout

    # -- tear-down ---------------------------------------------------------------------------------------
    def _own_processes(self) -> list[int]:
        """Processes started with this cluster's SLURM_CONF: jobs, job steps and what they run."""
        marker = f"SLURM_CONF={self.conf}".encode()
        own = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    own.append(int(entry.name))
            except OSError:
                continue
        return own

    def stop(self):
        if any(name == "slurmctld" and process.poll() is None for name, process in self._daemons):
            try:
                self.client("scancel", "--full", "--user", "root", timeout=10)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and self.queue().strip():
                    time.sleep(0.5)
            except (subprocess.SubprocessError, OSError):
                pass
        for name, process in reversed(self._daemons):  # slurmd, slurmctld, then munged
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        self._daemons.clear()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self._own_processes()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while pids and time.monotonic() < deadline:
                pids = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
                time.sleep(0.2)

    def __enter__(self) -> "LocalSlurm":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False

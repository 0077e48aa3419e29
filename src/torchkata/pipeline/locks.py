"""Snakemake's directory lock after a killed run.

Snakemake locks its working directory while it runs (`.snakemake/locks/`). A run killed by SIGKILL or a power
loss cannot remove its lock, and the next call would stop with a LockException until someone runs
`snakemake --unlock`. The lock is stale when no Snakemake process works in the directory any more. Processes are
visible in /proc only on this host, so a lock is removed only when the directory's runs happen on this host
(`.snakemake/torchkata-host`); a run on another host sharing the directory keeps its lock.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

LOCKS = Path(".snakemake/locks")
HOST_FILE = Path(".snakemake/torchkata-host")


def _is_snakemake(argv: list[bytes]) -> bool:
    """`.../bin/snakemake ...` (argv[1] under a python shebang) or `python -m snakemake ...`."""
    return any(Path(os.fsdecode(arg)).name == "snakemake" for arg in argv[:3])


def _self_and_ancestors() -> set[int]:
    """This process and the ones that started it (`timeout 60 snakemake ...` names snakemake too)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state; the name may hold spaces
    return pids


def snakemake_processes_in(directory: Path) -> list[int]:
    """Other Snakemake processes on this host whose working directory is `directory`."""
    directory, mine, found = directory.resolve(), _self_and_ancestors(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if _is_snakemake(argv) and cwd == directory:
            found.append(int(entry.name))
    return found


def clear_stale_locks(directory: Path) -> bool:
    """Remove the locks of a killed run in `directory`; True if there were stale ones."""
    locks, host_file, host = directory / LOCKS, directory / HOST_FILE, socket.gethostname()
    lock_files = sorted(locks.glob("*.lock"))
    if not lock_files:
        host_file.parent.mkdir(parents=True, exist_ok=True)
        host_file.write_text(host + "\n")
        return False
    if host_file.is_file() and host_file.read_text().strip() != host:
        return False
    if snakemake_processes_in(directory):
        return False
    for path in lock_files:
        path.unlink(missing_ok=True)
    print(f"torchkata: removed the lock that a killed Snakemake run left on {directory.resolve()}", file=sys.stderr)
    return True

"""A killed run's Snakemake lock is removed; a live run's lock, or one owned by another host, is kept."""
import subprocess
import sys
import time

import pytest

from torchkata.pipeline.locks import HOST_FILE, LOCKS, clear_stale_locks, snakemake_processes_in


@pytest.fixture
def locked(tmp_path):
    clear_stale_locks(tmp_path)  # no locks yet: records that this directory's runs happen on this host
    (tmp_path / LOCKS).mkdir(parents=True)
    for name in ("0.input.lock", "0.output.lock"):
        (tmp_path / LOCKS / name).write_text("results/a01/determinism.json\n")
    return tmp_path


def test_lock_of_a_killed_run_is_removed(locked):
    assert clear_stale_locks(locked)
    assert not list((locked / LOCKS).iterdir())


def test_lock_of_a_running_snakemake_is_kept(locked):
    fake = locked / "bin" / "snakemake"  # argv[1] is .../snakemake, as for the real entry point
    fake.parent.mkdir()
    fake.write_text("import time\ntime.sleep(60)\n")
    process = subprocess.Popen([sys.executable, str(fake)], cwd=locked)
    try:
        deadline = time.monotonic() + 10
        while process.pid not in snakemake_processes_in(locked):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert not clear_stale_locks(locked)
        assert len(list((locked / LOCKS).iterdir())) == 2
    finally:
        process.kill()
        process.wait()


def test_lock_owned_by_another_host_is_kept(locked):
    (locked / HOST_FILE).write_text("login-node-2\n")
    assert not clear_stale_locks(locked)
    assert len(list((locked / LOCKS).iterdir())) == 2

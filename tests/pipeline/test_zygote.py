"""zygote.call runs a job in a child forked from a warm server, as a fresh `python` would run it.

The clients are subprocesses, as Snakemake's jobs are; each environment below carries a fresh
TORCHKATA_ZYGOTE_TEST value, hence a server of its own (the warm one is shared by the module's tests)."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from torchkata.pipeline import zygote

HELPERS = Path(__file__).parent  # zygote_entries.py
SRC = Path(__file__).parents[2] / "src"
CLIENT = "import sys; from torchkata.pipeline import zygote; sys.exit(zygote.call(sys.argv[1], sys.argv[2:]))"
# The same, once the file "go" exists: clients that call at the same moment, each already started.
CLIENT_AT_GO = ("import os, sys, time; from torchkata.pipeline import zygote\n"
                "open(f'ready-{os.getpid()}', 'w').close()\n"
                "while not os.path.exists('go'): time.sleep(0.001)\n"
                "sys.exit(zygote.call(sys.argv[1], sys.argv[2:]))")


def fresh_environment(**variables) -> dict:
    env = {name: value for name, value in os.environ.items()
           if name not in (zygote.DISABLE_VARIABLE, zygote.IDLE_VARIABLE, "SLURM_JOB_ID")}
    env.update(PYTHONPATH=os.pathsep.join([str(SRC), str(HELPERS)]), TORCHKATA_ZYGOTE_TEST=uuid.uuid4().hex,
               **variables)
    return env


def start_client(env, cwd, entry, *argv, client=CLIENT, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", client, entry, *map(str, argv)], env=env, cwd=cwd, **popen)


def run_client(env, cwd, entry, *argv, **popen) -> int:
    return start_client(env, cwd, entry, *argv, **popen).wait(timeout=60)


def identity(env, cwd, name="identity.json") -> dict:
    assert run_client(env, cwd, "zygote_entries:identity", name) == 0
    return json.loads((cwd / name).read_text())


def server_processes(env) -> list[int]:
    """The live processes whose command line is `... zygote.py serve SOCKET` (the server and its children)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            alive = alive_pid(int(proc.name))
        except (ValueError, OSError):  # not a process, or one that has just ended
            continue
        if alive and command[-3:-1] == [b"serve", zygote.socket_path(env).encode()]:
            pids.append(int(proc.name))
    return pids


def alive_pid(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has ended


def wait_until(condition, what: str, timeout=10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s"
        time.sleep(0.02)


def stop_servers(env) -> None:
    for pid in server_processes(env):
        os.kill(pid, signal.SIGKILL)
    socket_file = zygote.socket_path(env)
    for suffix in (".sock", ".lock", ".log"):
        Path(socket_file).with_suffix(suffix).unlink(missing_ok=True)


@pytest.fixture
def cold_env():
    """An environment with no server yet; whatever server it gets is stopped at the end."""
    envs = []
    yield lambda **variables: envs.append(fresh_environment(**variables)) or envs[-1]
    for env in envs:
        stop_servers(env)


@pytest.fixture(scope="module")
def warm_env(tmp_path_factory):
    """An environment whose server has started (its first job pays the torch import)."""
    env = fresh_environment()
    try:
        identity(env, tmp_path_factory.mktemp("warm"))
        yield env
    finally:
        stop_servers(env)


def test_a_child_runs_the_job_as_the_client_process_would(warm_env, tmp_path):
    assert run_client(warm_env, tmp_path, "zygote_entries:report", "report.json", 7) == 0
    in_child = (tmp_path / "report.json").read_text()
    (tmp_path / "report.json.at-exit").unlink()  # the child ran the atexit handlers, as `python` does
    in_client = {**warm_env, "TORCHKATA_ZYGOTE": "0"}
    assert run_client(in_client, tmp_path, "zygote_entries:report", "report.json", 7) == 0
    assert (tmp_path / "report.json").read_text() == in_child
    assert (tmp_path / "report.json.at-exit").exists()
    assert json.loads(in_child)["cwd"] == str(tmp_path)


def test_each_job_is_a_new_child_of_one_server(warm_env, tmp_path):
    first, second = identity(warm_env, tmp_path, "first.json"), identity(warm_env, tmp_path, "second.json")
    assert first["parent"] == second["parent"] != os.getpid()  # the server, not this test's client
    assert len({first["pid"], second["pid"], first["parent"]}) == 3


def test_the_server_imported_torch_but_no_torchkata_module(warm_env, tmp_path):
    seen = identity(warm_env, tmp_path)
    assert seen["torch_preloaded"]
    assert seen["torchkata_modules"] == []


def test_a_module_edited_after_the_server_started_runs_as_edited(warm_env, tmp_path):
    module = tmp_path / "edited_entry.py"  # found through the client's sys.path ("" for `python -c`: its cwd)
    module.write_text("def main(argv):\n    return 5\n")
    assert run_client(warm_env, tmp_path, "edited_entry:main") == 5
    module.write_text("def main(argv):\n    return 16\n")
    assert run_client(warm_env, tmp_path, "edited_entry:main") == 16


@pytest.mark.parametrize("how, code", [("return", 3), ("exit", 4), ("raise", 1)])
def test_exit_code_and_output_reach_the_client(warm_env, tmp_path, how, code):
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        assert run_client(warm_env, tmp_path, "zygote_entries:finish", how, stdout=out, stderr=err) == code
    assert (tmp_path / "out").read_text() == f"stdout of {how}\n"
    errors = (tmp_path / "err").read_text()
    assert errors.startswith(f"stderr of {how}\n")
    if how == "raise":
        assert "Traceback" in errors and errors.endswith("RuntimeError: raised on purpose\n")


def test_killing_the_client_kills_the_child(warm_env, tmp_path):
    client = start_client(warm_env, tmp_path, "zygote_entries:sleep", "pid")
    wait_until(lambda: (tmp_path / "pid").exists(), "the child wrote its pid")
    child = int((tmp_path / "pid").read_text())
    assert child != client.pid
    client.kill()
    client.wait()
    wait_until(lambda: not Path(f"/proc/{child}").exists(), "the child ended and the server reaped it", timeout=5)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not cuda_available(), reason="no CUDA device")
def test_a_child_can_use_cuda_which_the_server_never_initialised(warm_env, tmp_path):
    for name in ("first.json", "second.json"):  # the second: CUDA is not inherited from the first either
        assert run_client(warm_env, tmp_path, "zygote_entries:cuda", name) == 0
        assert json.loads((tmp_path / name).read_text()) == {"initialised_before": False, "sum": 2000.0}


def test_sigterm_to_the_client_reaches_the_child(warm_env, tmp_path):
    client = start_client(warm_env, tmp_path, "zygote_entries:sleep", "pid")
    wait_until(lambda: (tmp_path / "pid").exists(), "the child wrote its pid")
    client.terminate()
    assert client.wait(timeout=10) == 7  # the child's SIGTERM handler's exit code, not the client's death


@pytest.mark.parametrize("variable", [{"TORCHKATA_ZYGOTE": "0"}, {"SLURM_JOB_ID": "12345"}])
def test_off_or_under_slurm_the_job_runs_in_the_client(cold_env, tmp_path, variable):
    env = cold_env(**variable)
    client = start_client(env, tmp_path, "zygote_entries:identity", "identity.json")
    assert client.wait(timeout=60) == 0
    assert json.loads((tmp_path / "identity.json").read_text())["pid"] == client.pid
    assert not Path(zygote.socket_path(env)).exists()


def test_clients_that_start_together_share_one_server(cold_env, tmp_path):
    env = cold_env()
    clients = [start_client(env, tmp_path, "zygote_entries:identity", f"{n}.json", client=CLIENT_AT_GO)
               for n in range(2)]
    wait_until(lambda: len(list(tmp_path.glob("ready-*"))) == 2, "both clients ready")
    (tmp_path / "go").touch()
    assert [client.wait(timeout=60) for client in clients] == [0, 0]
    seen = [json.loads((tmp_path / f"{n}.json").read_text()) for n in range(2)]
    assert seen[0]["parent"] == seen[1]["parent"] not in (os.getpid(), *(client.pid for client in clients))
    assert server_processes(env) == [seen[0]["parent"]]
    # and no second server was started, to give way at bind ("Address already in use" in the servers' log)
    assert Path(zygote.socket_path(env)).with_suffix(".log").read_text() == ""


def test_an_idle_server_exits_and_removes_its_socket(cold_env, tmp_path):
    env = cold_env(TORCHKATA_ZYGOTE_IDLE="1")
    server = identity(env, tmp_path)["parent"]
    socket_file = Path(zygote.socket_path(env))
    assert socket_file.exists() and alive_pid(server)
    wait_until(lambda: not socket_file.exists() and not alive_pid(server), "the server exited", timeout=10)

"""Run a job in a child forked from a warm server that has already imported torch: `call(entry, argv)`.

A run job as a fresh `python` pays `import torch` (2.3 s) for 0.05 s of work. Instead the first job starts
a server (a "zygote") that imports torch, numpy and matplotlib once, and every job is a child forked from
it: a separate process that runs like a fresh interpreter, with the caller's argv, working directory,
environment, umask, sys.path and stdin/stdout/stderr, and whose exit code the caller returns. The server
imports no torchkata module, so each child imports the project's code as it is on disk now (an edited
exercise runs as edited); and it runs no torch op, so thread pools and CUDA are made in each child, never
inherited through fork.

There is one server per setting: its socket is named after a hash of the interpreter, the whole
environment and this file's source, so no job runs under another job's PYTHONPATH, OMP_NUM_THREADS, ...,
nor under an older version of this protocol. A server exits after TORCHKATA_ZYGOTE_IDLE seconds
(default 20) without a job.

Thin clients import this module and must start fast: at the top, only the standard library modules that a
call to a warm server needs (no json, subprocess, contextlib: 5-20 ms each); the others where they are used.
`python -m torchkata.pipeline.zygote serve SOCKET` runs a server by hand.
"""
from __future__ import annotations

import atexit
import fcntl
import hashlib
import importlib
import marshal
import os
import signal
import socket
import stat
import struct
import sys
import time

DISABLE_VARIABLE = "TORCHKATA_ZYGOTE"  # "0": every job runs in the calling process
IDLE_VARIABLE = "TORCHKATA_ZYGOTE_IDLE"
DEFAULT_IDLE_S = 20.0
START_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 10.0  # a client sends its request at once: a silent one must not hold up the server
# torch._dynamo: the first optimizer, torch.utils.checkpoint and a dispatch mode import it lazily (2.7 s, most of a
# smoke run); its import runs no op and touches no CUDA (checked: no torch.cuda or torch._C._cuda_* call)
PRELOADED = ("torch", "torch._dynamo", "numpy", "matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg",
             "yaml")
# Fixed, short: a unix socket's path must stay under 108 bytes, which a per-job TMPDIR need not.
SOCKET_DIRECTORY = f"/tmp/torchkata-zygote-{os.getuid()}"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_LENGTH = struct.Struct("!I")  # size of the request that follows it (marshal: client and server are one
# interpreter, the socket's name says so; the socket's folder admits no one else)
_PID = struct.Struct("!i")
_STATUS = struct.Struct("!i")  # the child's status as os.waitpid gives it


class ZygoteError(RuntimeError):
    """The server failed after it took the job: the job's outcome is unknown, so it is not run again here."""


class _Unavailable(Exception):
    """No server could be started or reached, and nothing was sent: the job can still run in this process."""


class _NothingSent(EOFError):
    """A connection closed without a request."""


# --- client ---------------------------------------------------------------------------------------------

def call(entry: str, argv: list[str]) -> int:
    """Run `entry` ("package.module:function", called with `argv`, returning an exit code or None for 0) in a
    child of this setting's warm server, and return its exit code (128+N for a child killed by signal N).

    It runs in this process instead where the zygote is off (TORCHKATA_ZYGOTE=0), under SLURM (each job has
    its own cgroup there: a server started by one job would die with it), or where no server can be started
    or reached. Once the request is sent there is no such fallback: a job never runs twice.
    """
    _split_entry(entry)  # a malformed entry fails here, not in a child
    if os.environ.get(DISABLE_VARIABLE) == "0" or "SLURM_JOB_ID" in os.environ:
        return run_in_this_process(entry, argv)
    path = socket_path()
    with _Forwarding() as forwarding:
        try:
            connection = _send_job(path, entry, argv)
        except _Unavailable as reason:
            print(f"torchkata zygote: {reason}; running {entry} in this process", file=sys.stderr)
        else:
            with connection:
                return _wait_for_exit_code(connection, path, forwarding)
    return run_in_this_process(entry, argv)


def run_in_this_process(entry: str, argv: list[str]) -> int:
    """Import the entry's module, call its function with argv, return its exit code."""
    module_name, function_name = _split_entry(entry)
    code = getattr(importlib.import_module(module_name), function_name)(argv)
    return 0 if code is None else code


def socket_path(environ: dict[str, str] | None = None) -> str:
    """The socket of the server for this interpreter and venv, `environ` (default os.environ) and this file."""
    environ = os.environ if environ is None else environ
    # sys.prefix as well: venvs made from one interpreter share its realpath, not their site-packages.
    setting = repr([os.path.realpath(sys.executable), sys.prefix, sorted(environ.items())])
    with open(__file__, "rb") as source:
        key = hashlib.sha256(setting.encode() + source.read()).hexdigest()[:16]
    return os.path.join(SOCKET_DIRECTORY, f"{key}.sock")


def _split_entry(entry: str) -> tuple[str, str]:
    module_name, _, function_name = entry.partition(":")
    if not module_name or not function_name.isidentifier():
        raise ValueError(f"entry {entry!r} is not of the form 'package.module:function'")
    return module_name, function_name


def _send_job(path: str, entry: str, argv: list[str]) -> socket.socket:
    umask = os.umask(0)
    os.umask(umask)
    request = marshal.dumps({"entry": entry, "argv": list(argv), "cwd": os.getcwd(), "environ": dict(os.environ),
                             "path": list(sys.path), "umask": umask})
    try:
        connection = _connect_or_start_server(path)
    except OSError as error:
        raise _Unavailable(f"cannot start or reach the server {path} ({error})") from error
    _flush_standard_streams()  # what this process printed comes before what the child prints
    try:
        socket.send_fds(connection, [_LENGTH.pack(len(request))], [0, 1, 2])
        connection.sendall(request)
    except OSError as error:
        connection.close()
        # The server forks only once it holds the whole request, so no child was started.
        raise _Unavailable(f"the server {path} did not take the job ({error})") from error
    return connection


def _connect_or_start_server(path: str) -> socket.socket:
    _check_private_directory(os.path.dirname(path))
    try:
        return _connect(path)
    except OSError:  # none there, or a dead server's socket
        pass
    with open(_sibling(path, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one client starts the server; the others wait here, then connect
        try:
            return _connect(path)
        except OSError:
            return _start_server(path)


def _check_private_directory(directory: str) -> None:
    """The sockets' folder must be this user's alone: whoever can reach a server can run code as its user."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    status = os.lstat(directory)  # lstat: a symlink planted by another user is refused, not followed
    if status.st_uid != os.getuid() or status.st_mode & 0o077 or not stat.S_ISDIR(status.st_mode):
        raise PermissionError(f"{directory} must be a folder of user {os.getuid()} with mode 0700")


def _start_server(path: str) -> socket.socket:
    import subprocess

    log_path = _sibling(path, ".log")
    with open(log_path, "ab") as log:  # the server writes only its errors
        # -P and this file by path: the server imports no torchkata module, not even the package.
        # cwd "/": the server must keep no job's folder (perhaps a temporary one) in use.
        server = subprocess.Popen([sys.executable, "-P", os.path.realpath(__file__), "serve", path],
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
                                  start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:  # it listens before it preloads: in a few hundredths of a second
        try:
            return _connect(path)
        except OSError:
            pass
        if server.poll() is not None:
            raise _Unavailable(f"the server exited with code {server.returncode} as it started (see {log_path})")
        if time.monotonic() > deadline:
            server.kill()
            raise _Unavailable(f"the server did not listen within {START_TIMEOUT_S:.0f} s (see {log_path})")
        time.sleep(0.01)


def _connect(path: str) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except OSError:
        connection.close()
        raise
    return connection


def _sibling(socket_file: str, suffix: str) -> str:
    return socket_file.removesuffix(".sock") + suffix


def _wait_for_exit_code(connection: socket.socket, path: str, forwarding: _Forwarding) -> int:
    try:
        (pid,) = _PID.unpack(_receive(connection, _PID.size, "the child's pid"))
        forwarding.child_started(pid)
        (status,) = _STATUS.unpack(_receive(connection, _STATUS.size, "the child's exit status"))
    except (OSError, EOFError) as error:
        raise ZygoteError(f"the zygote server {path} failed during the job ({error}); the job's outcome is "
                          f"unknown (see {_sibling(path, '.log')})") from error
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class _Forwarding:
    """SIGTERM and SIGINT go to the child, not to this client. Those that come before the child's pid is
    known are held for it; if no child was started, they are raised in this process after all."""

    def __enter__(self) -> _Forwarding:
        self.pid: int | None = None
        self.held: list[int] = []
        self.previous = {signum: signal.signal(signum, self._handle) for signum in FORWARDED_SIGNALS}
        return self

    def _handle(self, signum: int, frame) -> None:
        if self.pid is None:
            self.held.append(signum)
        else:
            _signal_child(self.pid, signum)

    def child_started(self, pid: int) -> None:
        self.pid = pid
        for signum in self.held:
            _signal_child(pid, signum)

    def __exit__(self, *exception) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        if self.pid is None:
            for signum in self.held:
                signal.raise_signal(signum)


def _signal_child(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # it has just ended: its status is on the way
        pass


def _receive(connection: socket.socket, size: int, what: str) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise EOFError(f"the connection closed before {what}")
        data += chunk
    return data


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # None, a closed pipe, a closed file
            pass


# --- server ---------------------------------------------------------------------------------------------

class _Server:
    def __init__(self, path: str):
        import selectors

        self.path = path
        self.idle_s = _idle_seconds()
        self.listener = _listen(path)  # before the preloads: the first clients queue meanwhile
        self.inode = os.stat(path).st_ino
        # A child's end wakes the loop: SIGCHLD's number lands on this socket pair (signal.set_wakeup_fd), which
        # the selector watches with the listener. Not a waiter thread per child: fork in a multi-threaded
        # process may copy into the child a lock that another thread holds.
        self.child_ended, self.child_ended_writer = socket.socketpair()
        self.child_ended_writer.setblocking(False)
        signal.set_wakeup_fd(self.child_ended_writer.fileno())
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.selector = selectors.DefaultSelector()
        for source in (self.listener, self.child_ended):
            self.selector.register(source, selectors.EVENT_READ)
        self.jobs: dict[int, socket.socket] = {}  # pid -> the client's connection

    def serve(self) -> None:
        """Fork a child per request until idle for idle_s seconds; then unlink the socket, so that no client
        connects any more, serve those that connected before that, and return."""
        last_activity = time.monotonic()
        closing = False
        while True:
            timeout = None if self.jobs else max(0.0, last_activity + self.idle_s - time.monotonic())
            events = self.selector.select(timeout)
            for key, _ in events:
                if key.fileobj is self.listener:
                    self._start_job()
                else:
                    self.child_ended.recv(4096)  # the signal numbers: read, so that it is not readable again
                    self._finish_ended_jobs()
                last_activity = time.monotonic()
            if events or self.jobs or time.monotonic() - last_activity < self.idle_s:
                continue
            if closing:
                return
            if _inode(self.path) == self.inode:  # not the socket of a server started since
                os.unlink(self.path)
            closing = True
            self.idle_s = 0.0  # from now on: return at the first moment with no job and no client waiting

    def _start_job(self) -> None:
        connection, _ = self.listener.accept()
        try:
            request, fds = _receive_request(connection)
        except (OSError, EOFError, ValueError) as error:
            if not isinstance(error, _NothingSent):
                _log(f"dropped a request: {error!r}")
            connection.close()
            return
        try:
            pid = os.fork()
        except OSError as error:
            _log(f"cannot fork for {request['entry']}: {error!r}")
            pid = None
        if pid == 0:
            code = 1
            try:
                code = self._run_child(request, fds, connection)
            finally:
                os._exit(code)  # the child never returns into this loop
        for fd in fds:  # the child has them
            os.close(fd)
        if pid is None:
            connection.close()  # the client reports the failure
            return
        self.jobs[pid] = connection
        try:
            connection.sendall(_PID.pack(pid))
        except OSError:  # the client is gone: the child's watchdog ends the child
            pass

    def _finish_ended_jobs(self) -> None:
        """Reap the children that have ended (all of this server's children are jobs) and report them."""
        while self.jobs:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            connection = self.jobs.pop(pid)
            try:
                connection.sendall(_STATUS.pack(status))
            except OSError:  # the client is gone
                pass
            connection.close()

    def _run_child(self, request: dict, fds: list[int], connection: socket.socket) -> int:
        """Become the job's process, run the entry, and exit as `python` would; returns the exit code."""
        import threading
        import traceback

        self._close_server_files()
        for target, fd in enumerate(fds):  # the client's stdin, stdout, stderr
            os.dup2(fd, target)
            os.close(fd)
        code, interrupted = 1, False
        try:
            _become_client_process(request)
            _watch_client(connection)
            code = run_in_this_process(request["entry"], request["argv"])
        except SystemExit as exit:
            code = _exit_code(exit)
        except KeyboardInterrupt:
            traceback.print_exc()
            interrupted = True
        except BaseException:
            traceback.print_exc()
        # What the interpreter does on exit: wait for non-daemon threads, run atexit handlers (MLflow ends an
        # open run there), flush; a child that ends on KeyboardInterrupt dies of SIGINT, as `python` does.
        threading._shutdown()
        atexit._run_exitfuncs()
        _flush_standard_streams()
        if interrupted:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        return code

    def _close_server_files(self) -> None:
        signal.set_wakeup_fd(-1)
        for file in (self.selector, self.listener, self.child_ended, self.child_ended_writer, *self.jobs.values()):
            file.close()  # the jobs': other children's client connections


def serve(path: str) -> None:
    """Run a server on the unix socket `path`."""
    import gc

    server = _Server(path)
    _preload()
    # The preloaded objects live as long as the server: frozen, a child's garbage collections skip them, where
    # they would otherwise walk them all and so copy every page they lie on (~100 ms per full collection).
    gc.freeze()
    server.serve()


def _idle_seconds() -> float:
    text = os.environ.get(IDLE_VARIABLE, str(DEFAULT_IDLE_S))
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{IDLE_VARIABLE} must be a number of seconds, got {text!r}") from None


def _listen(path: str) -> socket.socket:
    try:
        _connect(path).close()
    except OSError:  # nothing listens there
        if _inode(path) is not None:
            os.unlink(path)  # a dead server's socket
    else:
        raise SystemExit(f"torchkata zygote: a server already listens on {path}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    return listener


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _preload() -> None:
    """Import, never run: a torch op would start OpenMP/MKL thread pools, which do not survive fork, and CUDA
    must not be initialised before fork. (numpy's OpenBLAS starts its threads on import, but stops them
    before each fork and its children start their own.)"""
    for name in PRELOADED:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            _log(f"not preloaded: {error!r}")
            continue
        if name == "matplotlib":
            module.use("Agg")


def _log(message: str) -> None:
    print(f"torchkata zygote {os.getpid()}: {message}", file=sys.stderr, flush=True)  # to the server's log


def _receive_request(connection: socket.socket) -> tuple[dict, list[int]]:
    connection.settimeout(REQUEST_TIMEOUT_S)
    header, fds, _, _ = socket.recv_fds(connection, _LENGTH.size, 3)
    if not header and not fds:
        raise _NothingSent("a client that only checked that this server listens, or one killed at once")
    try:
        if len(fds) != 3:
            raise ValueError(f"a request comes with the client's fds 0, 1 and 2, this one with {len(fds)} fds")
        header += _receive(connection, _LENGTH.size - len(header), "the request's size")
        (length,) = _LENGTH.unpack(header)
        request = marshal.loads(_receive(connection, length, "the whole request"))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    connection.settimeout(None)  # the child's watchdog waits on it without a limit
    return request, fds


def _become_client_process(request: dict) -> None:
    """What differs between this forked child and the fresh `python` the client would have started."""
    _restore_fresh_signal_handlers()
    sys.stdout = sys.__stdout__ = _reopen(1, sys.__stdout__)
    sys.stderr = sys.__stderr__ = _reopen(2, sys.__stderr__)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["environ"])
    sys.path[:] = request["path"]
    importlib.invalidate_caches()  # modules created since the server started must be found
    sys.argv = [request["entry"], *request["argv"]]
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:  # numpy's global generator was seeded in the server: unseeded draws differ
        numpy_random.seed()  # per process (the random module reseeds itself after fork)


def _restore_fresh_signal_handlers() -> None:
    """As `python` sets them, whatever the server inherited from the client that started it."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for signum in signal.Signals:
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _reopen(fd: int, stream):
    """A new stream on fd, now the client's: line-buffered, so that its lines interleave with other output."""
    return open(fd, "w", buffering=1, encoding=stream.encoding, errors=stream.errors, closefd=False)


def _watch_client(connection: socket.socket) -> None:
    """End this child when the client's connection closes: a killed client (a SIGKILLed Snakemake) must not
    leave its job running on. The client sends nothing after its request, so any recv returns at its end."""
    import threading

    def watch() -> None:
        try:
            while connection.recv(1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="zygote-client-watchdog", daemon=True).start()


def _exit_code(exit: SystemExit) -> int:
    """The exit status `python` gives an uncaught SystemExit."""
    if exit.code is None:
        return 0
    if isinstance(exit.code, int):
        return exit.code
    print(exit.code, file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "serve":
        raise SystemExit("usage: python -m torchkata.pipeline.zygote serve SOCKET")
    serve(argv[1])


if __name__ == "__main__":
    main()

"""Warm start of script jobs: a fork server that has imported the heavy libraries once.

On a small model every job's own work takes a second or two, and importing torch, transformers, DeepSpeed and
lm-eval takes about four (measured, ``docs/benchmarks.md``). When Snakemake runs jobs on this machine, the
workflow starts one server per run (``Server``) that imports those third-party libraries and nothing of
``kentropy``; each script job's interpreter then only asks it (``run``, the command Snakemake starts instead
of ``python script.py``) to fork a child that runs the script, with the job's working directory, environment,
arguments and standard streams. The child imports ``kentropy`` from disk as a cold job would, so it runs the
checkout's code; the libraries it finds imported are the ones a cold job would import. A job falls back to
the cold start (``exec`` of the interpreter on the script) when no server answers, when the server is not
this user's, or when its environment differs from the server's in a variable that a library reads when it is
imported (``IMPORT_TIME``): the kernels' ``ATEN_CPU_CAPABILITY``, the thread and offline settings.

Who may use it: the socket lives in a directory of its own (``private_socket``: mode 0700, owned by the
user), is itself mode 0600, and each side checks the other's uid (``SO_PEERCRED``): the server forks only
for its own user, and a client sends its environment and streams only to a server of its own user. Its
lifecycle: the server stops (its children with it) when the Snakemake that started it is gone or sends
TERM/HUP/INT; a child is stopped when its client's connection closes (a killed job leaves no writer behind);
a client whose server vanished stops its child's process group and fails. Remote (cluster) jobs find no
server and start cold; so does every job where a GPU is present (``gpu_present``: a process that has
initialised CUDA cannot fork). Stdlib only at import: the client must start fast.
"""

from __future__ import annotations

import array
import json
import os
import selectors
import signal
import socket
import stat
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path

#: Folder (relative to the workflow's working directory: an absolute path can exceed AF_UNIX's 108 bytes)
#: under which each server gets a private directory of its own.
SOCKET_ROOT = ".snakemake/kentropy"
#: Third-party modules the server imports before it forks: what the compute scripts import.
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "scipy.stats",
    "torch",
    "transformers",
    "transformers.models.olmo.modeling_olmo",
    "transformers.models.auto.modeling_auto",
    "tokenizers",
    "safetensors.torch",
    "deepspeed",
    # imported by every engine's optimizer check (``deepspeed.runtime.zero.utils``); it imports torch's compiler
    "deepspeed.runtime.zero.muon.muon_optimizer",
    "lm_eval.evaluator",
    "snakemake.script",
    "threadpoolctl",
)
#: Prefixes of environment variables read when a library is imported (so a child cannot change them).
IMPORT_TIME = ("ATEN_", "MKL_", "OMP_", "KMP_", "HF_", "TRANSFORMERS_", "TORCH", "PYTORCH_", "DS_", "CUDA_",
               "LD_", "PYTHON", "TOKENIZERS_", "NUMEXPR_", "OPENBLAS_", "GOTO_", "VECLIB_")  # fmt: skip
#: Set by Snakemake to each job's thread count (``snakemake.shell``): applied in the child instead of compared.
JOB_THREADS = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")  # fmt: skip
#: Device files of a GPU driver (NVIDIA, AMD ROCm, WSL's): where one exists the warm start is off.
GPU_DEVICES = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")
#: Seconds a stopped child gets between SIGTERM and SIGKILL.
GRACE = 5.0
#: Seconds the workflow waits for its server to import the libraries and listen before it starts jobs.
READY_TIMEOUT = 60.0
#: Signals that stop the server (with its children).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_HEADER = struct.Struct("!I")
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


class NotOurs(OSError):
    """The socket, its directory or the process at the other end belongs to another user."""


def gpu_present() -> bool:
    """Whether this machine has a GPU driver's device (the warm start is then off: CUDA and fork do not mix)."""
    return any(os.path.exists(device) for device in GPU_DEVICES)


def private_socket(root: str | Path = SOCKET_ROOT) -> str:
    """A fresh socket path in a directory only this user can enter (0700, a new name per call, so two runs in
    one working directory never share a server)."""
    os.makedirs(root, exist_ok=True)
    return os.path.join(tempfile.mkdtemp(prefix="warm-", dir=root), "sock")


def _check_directory(path: str) -> None:
    """Refuse a socket whose directory is a link, is not this user's, or lets anyone else in."""
    info = os.lstat(os.path.dirname(path) or ".")
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise NotOurs(f"{os.path.dirname(path)}: not a private directory of uid {os.getuid()}")


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (the kernel's record, ``SO_PEERCRED``)."""
    _, uid, _ = _CREDENTIALS.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size))
    return uid


def _import_time_env(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME) and k not in JOB_THREADS}


def _apply_job_threads(env: dict) -> None:
    """The thread counts a cold job's libraries would read from ``env`` when loaded: BLAS and OpenMP pools
    (threadpoolctl) and torch's intra-op pool, set in the child before the script runs."""
    threads = env.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():
        if "threadpoolctl" in sys.modules:
            sys.modules["threadpoolctl"].threadpool_limits(int(threads))
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(threads))


def _send(conn: socket.socket, message: dict, fds=()) -> None:
    data = json.dumps(message).encode()
    conn.sendmsg(
        [_HEADER.pack(len(data)), data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    )


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    """One message and the file descriptors sent with it."""
    fds = array.array("i")
    head, ancillary, _, _ = conn.recvmsg(_HEADER.size, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if len(head) < _HEADER.size:
        for fd in fds:
            os.close(fd)
        raise ConnectionError("closed")
    (size,) = _HEADER.unpack(head)
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return json.loads(body), list(fds)


def serve(path: str, env: dict | None = None, parent: int | None = None, preload=PRELOAD) -> None:
    """Import ``preload`` with ``env`` added to the environment, then fork one child per request from a process
    of this user until the process ``parent`` (the Snakemake that started it) is gone or a stop signal comes;
    then stop every child still running and remove the socket and its directory. A request is served warm
    when its environment's import-time variables are those the server started with, before ``env``: the
    variables every compute job sets for itself before its imports. ``path``: from ``private_socket``."""
    stop_signal: list[int] = []  # set by a stop signal; checked between two polls (never mid-fork)
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, _frame: stop_signal.append(signum))
    _check_directory(path)
    baseline = _import_time_env(dict(os.environ))
    os.environ.update(env or {})
    for name in preload:
        __import__(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is created 0600
    try:
        listener.bind(path)  # fails if anything is at the path: never takes over another server's
    finally:
        os.umask(old_umask)
    listener.listen(16)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}  # child pid -> the client's connection
    stopping: dict[int, float] = {}  # child pid -> when it was sent SIGTERM
    print(f"warm start: serving {path} (pid {os.getpid()})", flush=True)
    try:
        while not stop_signal and (parent is None or os.getppid() == parent):
            for key, _ in selector.select(timeout=0.05):
                if stop_signal:
                    break
                if key.fileobj is listener:
                    _accept(listener, selector, baseline, children)
                else:  # a client's connection is readable: it closed (a client sends nothing after its request)
                    selector.unregister(key.fileobj)
                    pid = next(p for p, c in children.items() if c is key.fileobj)
                    print(f"warm start: client of job {pid} gone; stopping the job", flush=True)
                    _stop_once(pid, stopping)
            _reap(children, selector)
            _escalate(stopping, children)
    finally:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        why = f"signal {stop_signal[0]}" if stop_signal else "the workflow ended"
        print(f"warm start: {why}; stopping {len(children)} running job(s)", flush=True)
        listener.close()
        _reap(children, selector)  # a job that finished before the stop is reported as it ended
        for pid in children:
            _stop_once(pid, stopping)
        deadline = time.monotonic() + GRACE
        while children and time.monotonic() < deadline:
            time.sleep(0.02)
            _reap(children, selector)
        for pid in list(children):
            _kill_group(pid, signal.SIGKILL)
        while children:
            _reap(children, selector)
            time.sleep(0.01)
        _remove(path)


def _remove(path: str) -> None:
    """Remove the socket and its private directory."""
    Path(path).unlink(missing_ok=True)
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass


def _accept(listener, selector, baseline: dict, children: dict) -> None:
    """Take one request: refuse another user's, send a different environment cold, fork the rest."""
    conn, _ = listener.accept()
    fds: list[int] = []
    try:
        uid = peer_uid(conn)
        if uid != os.getuid():
            print(f"warm start: refused a connection from uid {uid}", flush=True)
            conn.close()
            return
        conn.settimeout(5)  # a client that connects and sends nothing cannot hold the server
        request, fds = _receive(conn)
        conn.settimeout(None)
    except (ConnectionError, OSError, ValueError):
        for fd in fds:
            os.close(fd)
        conn.close()
        return
    differing = sorted(k for k in baseline.keys() | _import_time_env(request["env"]).keys()
                       if baseline.get(k) != request["env"].get(k))  # fmt: skip
    if differing or len(fds) != 3:
        print(f"warm start: a job sent cold (its environment differs in {', '.join(differing) or '-'})", flush=True)
        _send(conn, {"cold": True})
        conn.close()
        for fd in fds:
            os.close(fd)
        return
    pid = os.fork()
    if pid == 0:  # the job keeps no descriptor of the server's: its clients see EOF when the server is gone
        for other in (listener, conn, *children.values()):
            other.close()
        selector.close()
        _child(request, fds)  # never returns
    for fd in fds:
        os.close(fd)
    _send(conn, {"pid": pid})
    children[pid] = conn
    selector.register(conn, selectors.EVENT_READ)
    print(f"warm start: job {pid}: {request['argv'][0]}", flush=True)


def _kill_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_once(pid: int, stopping: dict) -> None:
    """SIGTERM a job's group, once; ``stopping`` records when (``_escalate`` KILLs it after ``GRACE``)."""
    if pid not in stopping:
        _kill_group(pid, signal.SIGTERM)
        stopping[pid] = time.monotonic()


def _escalate(stopping: dict, children: dict) -> None:
    """SIGKILL the group of a child that outlived its grace after SIGTERM."""
    for pid, since in list(stopping.items()):
        if pid not in children:
            del stopping[pid]
        elif time.monotonic() - since > GRACE:
            _kill_group(pid, signal.SIGKILL)


def _reap(children: dict, selector) -> None:
    """Send each finished child's exit status to its client."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            if _registered(selector, conn):
                selector.unregister(conn)
            try:
                _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
            except OSError:
                pass
            conn.close()


def _registered(selector, conn) -> bool:
    try:
        selector.get_key(conn)
    except KeyError:
        return False
    return True


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this process when the server dies (Linux ``PR_SET_PDEATHSIG``; elsewhere the
    client stops the job instead)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def _child(request: dict, fds: list[int]) -> None:
    """In the forked child: become the job (streams, directory, environment, arguments) and run its script, or
    its module where the arguments start with ``-m`` as an interpreter's do."""
    import runpy

    code = 1
    try:
        os.setpgrp()  # the client signals the group: the script and anything it starts
        _die_with_parent()
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin, sys.stdout, sys.stderr = (open(i, mode, closefd=False, buffering=1 if i else -1)  # noqa: SIM115
                                             for i, mode in ((0, "r"), (1, "w"), (2, "w")))  # fmt: skip
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _apply_job_threads(request["env"])
        if request["argv"][0] == "-m":  # ``python -m module``: the module from sys.path, the directory first
            sys.argv = list(request["argv"][1:])
            sys.path[0] = request["cwd"]
            runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(request["argv"])
            sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
            runpy.run_path(sys.argv[0], run_name="__main__")
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        if not isinstance(exit.code, int) and exit.code is not None:
            print(exit.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _connect(path: str) -> socket.socket:
    """A connection to this user's server at ``path`` (NotOurs for a directory or a server of anyone else)."""
    _check_directory(path)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    uid = peer_uid(conn)
    if uid != os.getuid():
        conn.close()
        raise NotOurs(f"{path}: the server runs as uid {uid}")
    return conn


def run(argv: list[str], path: str) -> int:
    """Run the script ``argv[0]`` (or the module after ``-m``) with arguments through this user's server at ``path``
    (forwarding SIGTERM and SIGINT to the job), or, with no server that takes it, replace this process by a
    cold interpreter on it."""
    try:
        conn = _connect(path)
        _send(conn, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}, fds=[0, 1, 2])
        answer, _ = _receive(conn)
    except NotOurs as err:
        print(f"warm start: {err}; starting cold", file=sys.stderr)
        answer = {"cold": True}
    except (OSError, ConnectionError, ValueError):
        answer = {"cold": True}
    if answer.get("cold"):
        os.execv(sys.executable, [sys.executable, *argv])
    pid = answer["pid"]

    def forward(signum, _frame):
        _kill_group(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    try:
        result, _ = _receive(conn)
    except (OSError, ConnectionError):
        # The server is gone (stopped or killed): make sure nothing of the job writes after we report failure.
        _kill_group(pid, signal.SIGKILL)
        print("warm start: the server stopped before the job ended; the job was stopped", file=sys.stderr)
        return 1
    code = int(result["exit"])
    if code < 0:  # killed by a signal: end the same way, as a cold interpreter would have
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


class Server:
    """The server of one Snakemake run: started by ``start`` in a private directory, stopped by ``stop``."""

    def __init__(self, env: dict, log: str, root: str | Path = SOCKET_ROOT, preload=None, environ=None):
        """``env``: added after the imports (what every job sets for itself); ``environ``: the server's own
        environment, whose import-time variables a job's must equal to be served warm (default: this process's)."""
        import subprocess

        self.path = private_socket(root)
        os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
        modules = ",".join(PRELOAD if preload is None else preload)
        with open(log, "a") as out:  # every run's server, one after the other
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kentropy.pipeline.warm",
                    "serve",
                    self.path,
                    json.dumps(env),
                    str(os.getpid()),
                    modules,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environ,
            )
        # Jobs asked for before the socket exists would start cold, each importing what the server imports.
        deadline = time.monotonic() + READY_TIMEOUT
        while not os.path.exists(self.path) and self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)

    def command(self) -> str:
        """The script command (Snakemake's format: ``py_exec`` and ``fname`` filled by it) of a warm job."""
        import shlex

        return f"{{py_exec:q}} -m kentropy.pipeline.warm --socket {shlex.quote(self.path)} {{fname:q}}"

    def stop(self, wait: float = 2 * GRACE + 5) -> None:
        """TERM the server (it stops its jobs and removes its socket) and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(wait)
            except Exception:
                self.process.kill()
                self.process.wait()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        path, env, parent, preload = argv[1], json.loads(argv[2]), int(argv[3]), argv[4].split(",")
        try:
            serve(path, env=env, parent=parent, preload=[name for name in preload if name])
        finally:
            _remove(path)
    elif argv[:1] == ["--socket"] and len(argv) >= 3:
        sys.exit(run(argv[2:], argv[1]))
    else:
        sys.exit(
            "usage: python -m kentropy.pipeline.warm --socket PATH SCRIPT [ARG…] | serve PATH ENV_JSON PARENT MODULES"
        )


if __name__ == "__main__":
    main()

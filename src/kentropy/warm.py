"""Warm start of script jobs: a fork server that has imported the heavy libraries once.

On a small model every job's own work takes a second or two, and importing torch, transformers, DeepSpeed and
lm-eval takes about four (measured, ``docs/benchmarks.md``). When Snakemake runs jobs on this machine, the
workflow starts one server (``serve``) that imports those third-party libraries and nothing of ``kentropy``;
each script job's interpreter then only asks it (``run``, the command Snakemake starts instead of
``python script.py``) to fork a child that runs the script, with the job's working directory, environment,
arguments and standard streams. The child imports ``kentropy`` from disk as a cold job would, so it runs the
checkout's code; the libraries it finds imported are the ones a cold job would import. A job falls back to
the cold start (``exec`` of the interpreter on the script) when no server answers, or when its environment
differs from the server's in a variable that a library reads when it is imported (``IMPORT_TIME``): the
kernels' ``ATEN_CPU_CAPABILITY``, the thread and offline settings. Remote (cluster) jobs find no server and
start cold. Stdlib only at import: the client must start fast.
"""

from __future__ import annotations

import array
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback

#: The socket, relative to the workflow's working directory (an absolute path can exceed AF_UNIX's 108 bytes).
SOCKET = ".snakemake/kentropy/warm.sock"
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
_HEADER = struct.Struct("!I")


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
    if len(head) < _HEADER.size:
        raise ConnectionError("closed")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    (size,) = _HEADER.unpack(head)
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return json.loads(body), list(fds)


def serve(path: str = SOCKET, env: dict | None = None, parent: int | None = None, preload=PRELOAD) -> None:
    """Import ``preload`` with ``env`` added to the environment, then fork one child per request until the
    process ``parent`` (the Snakemake that started it) is gone or a ``stop`` request comes. A request is
    served warm when its environment's import-time variables are those the server started with, before
    ``env``: the variables every compute job sets for itself before its imports."""
    baseline = _import_time_env(dict(os.environ))
    os.environ.update(env or {})
    for name in preload:
        __import__(name)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    waiting: dict[int, socket.socket] = {}  # child pid -> the client's connection
    try:
        while parent is None or os.getppid() == parent:
            for _ in selector.select(timeout=0.05):
                conn, _ = listener.accept()
                try:
                    request, fds = _receive(conn)
                except (ConnectionError, OSError, ValueError):
                    conn.close()
                    continue
                if request.get("stop"):
                    return
                if _import_time_env(request["env"]) != baseline:
                    _send(conn, {"cold": True})
                    conn.close()
                    for fd in fds:
                        os.close(fd)
                    continue
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    _child(request, fds)  # never returns
                for fd in fds:
                    os.close(fd)
                _send(conn, {"pid": pid})
                waiting[pid] = conn
            _reap(waiting)
    finally:
        listener.close()
        if os.path.exists(path):
            os.unlink(path)
        for pid in waiting:
            os.kill(pid, signal.SIGTERM)


def _reap(waiting: dict) -> None:
    """Send each finished child's exit status to its client."""
    while waiting:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = waiting.pop(pid, None)
        if conn is not None:
            code = os.waitstatus_to_exitcode(status)
            try:
                _send(conn, {"exit": code})
            except OSError:
                pass
            conn.close()


def _child(request: dict, fds: list[int]) -> None:
    """In the forked child: become the job (streams, directory, environment, arguments) and run its script."""
    import runpy

    code = 1
    try:
        os.setpgrp()  # the client signals the group: the script and anything it starts
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
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


def run(argv: list[str], path: str = SOCKET) -> int:
    """Run the script ``argv[0]`` with arguments ``argv[1:]`` through the server (forwarding SIGTERM and SIGINT
    to it), or, with no server that takes it, replace this process by a cold interpreter on it."""
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
        _send(conn, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}, fds=[0, 1, 2])
        answer, _ = _receive(conn)
    except (OSError, ConnectionError, ValueError):
        answer = {"cold": True}
    if answer.get("cold"):
        os.execv(sys.executable, [sys.executable, *argv])
    pid = answer["pid"]

    def forward(signum, _frame):
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    try:
        result, _ = _receive(conn)
    except (OSError, ConnectionError):
        return 1  # the server is gone (the workflow ended): the child was stopped with it
    code = int(result["exit"])
    if code < 0:  # killed by a signal: end the same way, as a cold interpreter would have
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def stop(path: str = SOCKET, wait: float = 5.0) -> None:
    """Ask the server at ``path`` to stop, if one answers."""
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
        _send(conn, {"stop": True})
        conn.close()
    except OSError:
        return
    deadline = time.monotonic() + wait
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        env = json.loads(argv[1]) if len(argv) > 1 else {}
        serve(env=env, parent=os.getppid())
    elif argv[:1] == ["stop"]:
        stop()
    else:
        sys.exit(run(argv))


if __name__ == "__main__":
    main()

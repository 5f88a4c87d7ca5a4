"""The warm start (kentropy.pipeline.warm): a forked child runs the script as a cold interpreter would, or the client
falls back to one; exit codes, streams, directory, environment and signals reach the job; nobody but its
user reaches the server; a stopped server, a killed client or a killed server leaves no job running; two
runs never share a server; and Snakemake's private API it patches is what it expects."""

import inspect
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from kentropy.pipeline import warm

from .conftest import ROOT

SCRIPT = """import os, sys, time
print("argv", sys.argv[1:], "cwd", os.getcwd(), "job", os.environ.get("JOB"), "warm", "json" in sys.modules)
print("to stderr", file=sys.stderr)
if os.environ.get("SLEEP"):
    open("started", "w").write(str(os.getpid()))
    time.sleep(float(os.environ["SLEEP"]))
    open("finished", "w").close()
sys.exit(os.environ.get("FAIL") and "failed here")
"""
NOBODY = 65534
#: How long a job that must be stopped would run before writing ``finished``.
JOB_SECONDS = 2
#: A stdlib interpreter another user may run (the test's own can live in a folder private to its user).
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/usr/local/bin:/bin")
root_only = pytest.mark.skipif(
    os.getuid() != 0 or SYSTEM_PYTHON is None, reason="needs root and a system python3 to act as a second user"
)


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def start_server(directory: Path) -> tuple[subprocess.Popen, str]:
    """A server process with its socket under ``directory`` that preloads only ``json``."""
    path = warm.private_socket(directory / warm.SOCKET_ROOT)
    code = f"from kentropy.pipeline import warm; warm.serve({path!r}, env={{'HF_HUB_OFFLINE': '1'}}, preload=('json',))"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=directory, stdout=subprocess.PIPE, text=True)
    wait_for(lambda: os.path.exists(path))
    return proc, path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z" if Path(f"/proc/{pid}").exists() else False


@pytest.fixture
def short_tmp():
    """A temporary folder of a short path: a socket's path must fit AF_UNIX's 108 bytes, which pytest's folders can
    exceed (under pytest-xdist, for one). The workflow's own sockets are relative to its directory."""
    folder = Path(tempfile.mkdtemp(prefix="warm-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def server(short_tmp, monkeypatch):
    monkeypatch.chdir(short_tmp)
    (short_tmp / "job.py").write_text(SCRIPT)
    proc, path = start_server(short_tmp)
    yield short_tmp, path, proc
    if proc.poll() is None:
        proc.terminate()
        assert proc.wait(15) == 0
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))


def client(path, env=None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {})}
    command = [sys.executable, "-m", "kentropy.pipeline.warm", "--socket", path, "job.py"]
    return subprocess.run(command, env=env, capture_output=True, text=True, **kwargs)


def background_client(path, sleep: float = 60) -> subprocess.Popen:
    command = [sys.executable, "-m", "kentropy.pipeline.warm", "--socket", path, "job.py"]
    return subprocess.Popen(command, env={**os.environ, "SLEEP": str(sleep)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def started_job(directory: Path) -> int:
    wait_for(lambda: (directory / "started").exists() and (directory / "started").read_text())
    return int((directory / "started").read_text())


def test_a_warm_job_runs_in_a_child_with_the_jobs_streams_directory_and_environment(server):
    directory, path, _ = server
    done = client(path, {"JOB": "7"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"argv [] cwd {directory} job 7 warm True\n" and done.stderr == "to stderr\n"
    failed = client(path, {"FAIL": "1"})
    assert failed.returncode == 1 and failed.stderr.endswith("failed here\n")


def test_a_module_runs_as_python_m_runs_it(server):
    """``-m module``: the module found from the job's directory, its arguments after it; warm, and cold alike."""
    directory, path, _ = server
    (directory / "job_module.py").write_text(SCRIPT)
    command = [sys.executable, "-m", "kentropy.pipeline.warm", "--socket", path, "-m", "job_module", "a", "b"]
    for env, started in (({}, "warm True"), ({"ATEN_CPU_CAPABILITY": "default"}, "warm False")):
        done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"argv ['a', 'b'] cwd {directory} job None {started}\n"


def test_an_import_time_variable_the_server_was_not_started_with_starts_the_job_cold(server):
    _, path, _ = server
    done = client(path, {"ATEN_CPU_CAPABILITY": "default"})
    assert done.returncode == 0 and "warm False" in done.stdout  # a fresh interpreter, which has not imported json
    # Snakemake's per-job thread counts are applied in the child, not compared.
    assert "warm True" in client(path, {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}).stdout


def test_no_server_starts_the_job_cold(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text(SCRIPT)
    done = client(str(tmp_path / "absent/sock"), {"FAIL": "1"})
    assert done.returncode == 1 and "warm False" in done.stdout and "failed here" in done.stderr


def test_a_terminated_client_terminates_its_job(server):
    directory, path, _ = server
    proc = background_client(path)
    job = started_job(directory)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == -signal.SIGTERM
    wait_for(lambda: not alive(job))


def test_the_socket_is_private_whatever_the_umask(short_tmp):
    old = os.umask(0o002)
    try:
        proc, path = start_server(short_tmp)
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert os.stat(path).st_uid == os.getuid()
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
    assert not os.path.exists(os.path.dirname(path))


def test_two_runs_in_one_directory_never_share_a_server_and_one_stopping_leaves_the_others_job(server):
    directory, path, first = server
    second, other = start_server(directory)
    assert os.path.dirname(other) != os.path.dirname(path)
    proc = background_client(other, sleep=1.5)
    started_job(directory)
    first.terminate()
    assert first.wait(15) == 0
    assert proc.wait(15) == 0 and (directory / "finished").exists()
    second.terminate()
    assert second.wait(15) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_server_stops_its_jobs_and_removes_its_socket(server, signum):
    directory, path, proc = server
    job_client = background_client(path, sleep=JOB_SECONDS)
    job = started_job(directory)
    proc.send_signal(signum)
    assert proc.wait(15) == 0
    assert job_client.wait(15) != 0  # reported as failed: Snakemake removes its outputs and reruns it
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))
    assert_stopped(directory, job)  # nothing written after the failure was reported


def assert_stopped(directory: Path, job: int) -> None:
    """The job (which sleeps ``JOB_SECONDS``, then writes ``finished``) is gone and never wrote."""
    wait_for(lambda: not alive(job))
    time.sleep(JOB_SECONDS + 0.5)
    assert not (directory / "finished").exists()


def test_a_killed_client_stops_its_job(server):
    directory, path, _ = server
    job_client = background_client(path, sleep=JOB_SECONDS)
    job = started_job(directory)
    job_client.kill()
    job_client.wait()
    assert_stopped(directory, job)


def test_a_killed_server_leaves_no_job_running(server):
    directory, path, proc = server
    job_client = background_client(path, sleep=JOB_SECONDS)
    job = started_job(directory)
    proc.kill()
    proc.wait()
    assert job_client.wait(15) == 1 and "the server stopped before the job ended" in job_client.stderr.read()
    assert_stopped(directory, job)
    warm._remove(path)


@pytest.fixture
def shared_directory(short_tmp):
    """A folder another user can enter (pytest's own are private to their owner)."""
    short_tmp.chmod(0o755)
    (short_tmp / "job.py").write_text(SCRIPT)
    return short_tmp


def as_nobody(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([SYSTEM_PYTHON, "-c", code], user=NOBODY, group=NOBODY, capture_output=True, text=True,
                          timeout=30, env={"PATH": os.environ["PATH"]})  # fmt: skip


#: Another user's client, stdlib only: connect, send a request with its streams, print what comes back.
INTRUDER = """import array, json, socket, struct, sys
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    conn.connect(sys.argv[1])
except OSError as err:
    print("refused:", type(err).__name__); sys.exit(0)
data = json.dumps({"argv": ["job.py"], "cwd": sys.argv[2], "env": {"SLEEP": "0.1"}}).encode()
fds = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))]
try:
    conn.sendmsg([struct.pack("!I", len(data)), data], fds)
    print("answer:", conn.recv(100) or "closed")
except OSError as err:
    print("answer: closed")
"""


@root_only
def test_another_user_cannot_reach_the_server(shared_directory):
    proc, path = start_server(shared_directory)
    try:
        code = f"import sys; sys.argv = ['', {path!r}, {str(shared_directory)!r}]\n" + INTRUDER
        assert as_nobody(code).stdout.strip() == "refused: PermissionError"  # the private directory
        # Even with the directory and socket opened up, the server forks nothing for another uid.
        os.chmod(os.path.dirname(path), 0o777)
        os.chmod(path, 0o777)
        assert as_nobody(code).stdout.strip() == "answer: closed"
        time.sleep(0.5)
        assert not (shared_directory / "started").exists()
    finally:
        proc.terminate()
        proc.wait(15)
    assert f"refused a connection from uid {NOBODY}" in proc.stdout.read()


@root_only
def test_a_client_never_talks_to_another_users_server(shared_directory):
    """A socket directory that is not the user's own (an impostor's) sends the job cold, with a warning."""
    impostor = shared_directory / "impostor"
    impostor.mkdir(mode=0o700)
    os.chown(impostor, NOBODY, NOBODY)
    command = [sys.executable, "-m", "kentropy.pipeline.warm", "--socket", str(impostor / "sock"), "job.py"]
    done = subprocess.run(command, cwd=shared_directory, capture_output=True, text=True)
    assert done.returncode == 0 and "warm False" in done.stdout
    assert f"not a private directory of uid {os.getuid()}; starting cold" in done.stderr


def test_peer_uid_is_the_kernels_record():
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert warm.peer_uid(a) == os.getuid()


def test_the_private_snakemake_api_the_warm_start_patches_is_still_there():
    """kentropy.pipeline.warm_hooks replaces ``PythonScript._execute_cmd`` and reads ``workflow._localrules``: if
    Snakemake renames either, or stops starting scripts with the command it intercepts, this fails."""
    import snakemake.api  # noqa: F401  (imports the workflow module without a cycle)
    from snakemake.script import PythonScript, ScriptBase
    from snakemake.workflow import Workflow

    assert list(inspect.signature(ScriptBase._execute_cmd).parameters) == ["self", "cmd", "kwargs"]
    assert '"{py_exec} {fname:q}"' in inspect.getsource(PythonScript.execute_script)
    assert "self._localrules = set()" in inspect.getsource(Workflow)
    assert "self._localrules" in inspect.getsource(Workflow.is_local)


SNAKEFILE = f"""include: {str(ROOT / "workflow/rules/warm.smk")!r}
onstart:
    WARM.start(True, {{}}, "warm.log", preload=["colorsys"])
onsuccess:
    WARM.stop()
onerror:
    WARM.stop()
rule all:
    input: "b.txt", "c.txt"
rule a:
    output: "a.txt"
    script: "a.py"
rule b:
    input: "a.txt"
    output: "b.txt"
    script: "b.py"
rule c:
    output: "c.txt"
    script: "c.py"
"""
JOB = """import os, sys, time
if os.environ.get("SLOW") and {slow}:
    open("started", "w").close()
    time.sleep(3)
open(snakemake.output[0], "w").write("warm" if "colorsys" in sys.modules else "cold")  # what the server imported
"""


def test_a_workflow_whose_server_is_stopped_mid_job_reruns_every_missing_output(tmp_path):
    """TERM to the server while a job runs: the job is stopped and reported failed, nothing is written after, the
    socket goes, and the rerun builds every missing output (warm)."""
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    for name, slow in (("a", False), ("b", False), ("c", True)):
        (tmp_path / f"{name}.py").write_text(JOB.format(slow=slow))
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--directory", str(tmp_path), "--snakefile",
               str(tmp_path / "Snakefile")]  # fmt: skip
    run = subprocess.Popen(command, env={**os.environ, "SLOW": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)  # fmt: skip
    wait_for(lambda: (tmp_path / "started").exists(), timeout=60)
    log = (tmp_path / "warm.log").read_text()
    server = int(log.split("(pid ")[1].split(")")[0])
    os.kill(server, signal.SIGTERM)
    output, _ = run.communicate(timeout=60)
    assert run.returncode != 0, output
    time.sleep(3.5)
    assert not (tmp_path / "c.txt").exists()
    assert not list((tmp_path / warm.SOCKET_ROOT).iterdir())
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert {p.name: p.read_text() for p in tmp_path.glob("?.txt")} == {
        "a.txt": "warm",
        "b.txt": "warm",
        "c.txt": "warm",
    }
    assert not list((tmp_path / warm.SOCKET_ROOT).iterdir())


def test_a_run_of_one_script_job_starts_no_server(tmp_path):
    """One script job to run is too few to pay for a server (``warm_hooks.MIN_JOBS``): it starts cold; two start
    one."""
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    for name in "abc":
        (tmp_path / f"{name}.py").write_text(JOB.format(slow=False))
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--directory", str(tmp_path), "--snakefile",
               str(tmp_path / "Snakefile")]  # fmt: skip
    one = subprocess.run([*command, "c.txt"], capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr
    assert "warm start: off (1 script job(s) to run, fewer than 2: they start cold)" in one.stderr
    assert not (tmp_path / "warm.log").exists() and (tmp_path / "c.txt").read_text() == "cold"
    two = subprocess.run([*command, "b.txt"], capture_output=True, text=True, timeout=120)
    assert two.returncode == 0, two.stderr
    assert [(tmp_path / f"{name}.txt").read_text() for name in "ab"] == ["warm", "warm"]


def test_the_warm_start_is_off_where_a_gpu_driver_is(monkeypatch):
    monkeypatch.setattr(warm, "GPU_DEVICES", ("/dev/null",))
    assert warm.gpu_present()
    monkeypatch.setattr(warm, "GPU_DEVICES", ("/dev/no-such-device",))
    assert not warm.gpu_present()

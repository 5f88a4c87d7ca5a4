"""The warm start (kentropy.warm): a forked child runs the script as a cold interpreter would, or the client
falls back to one; exit codes, streams, directory, environment and signals reach the job."""

import os
import signal
import subprocess
import sys
import time

import pytest

from kentropy import warm

SCRIPT = """import os, sys, time
print("argv", sys.argv[1:], "cwd", os.getcwd(), "job", os.environ.get("JOB"), "warm", "json" in sys.modules)
print("to stderr", file=sys.stderr)
if os.environ.get("SLEEP"):
    open("started", "w").close()
    time.sleep(60)
sys.exit(os.environ.get("FAIL") and "failed here")
"""


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A server process in ``tmp_path`` that preloads only ``json`` (its PRELOAD is the heavy libraries)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text(SCRIPT)
    code = "from kentropy import warm; warm.serve(env={'HF_HUB_OFFLINE': '1'}, preload=('json',))"
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 10
    while not os.path.exists(warm.SOCKET) and time.monotonic() < deadline:
        time.sleep(0.02)
    yield tmp_path
    warm.stop()
    assert proc.wait(10) == 0 and not os.path.exists(warm.SOCKET)


def client(env=None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "kentropy.warm", "job.py"], env=env, capture_output=True, text=True,
                          **kwargs)  # fmt: skip


def test_a_warm_job_runs_in_a_child_with_the_jobs_streams_directory_and_environment(server):
    done = client({"JOB": "7"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"argv [] cwd {server} job 7 warm True\n" and done.stderr == "to stderr\n"
    failed = client({"FAIL": "1"})
    assert failed.returncode == 1 and failed.stderr.endswith("failed here\n")


def test_an_import_time_variable_the_server_was_not_started_with_starts_the_job_cold(server):
    done = client({"ATEN_CPU_CAPABILITY": "default"})
    assert done.returncode == 0 and "warm False" in done.stdout  # a fresh interpreter, which has not imported json
    # Snakemake's per-job thread counts are applied in the child, not compared.
    assert "warm True" in client({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}).stdout


def test_no_server_starts_the_job_cold(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text(SCRIPT)
    done = client({"FAIL": "1"})
    assert done.returncode == 1 and "warm False" in done.stdout and "failed here" in done.stderr


def test_a_terminated_client_terminates_its_job(server):
    proc = subprocess.Popen([sys.executable, "-m", "kentropy.warm", "job.py"], env={**os.environ, "SLEEP": "1"},
                            stdout=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while not (server / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == -signal.SIGTERM

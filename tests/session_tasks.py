"""Work the whole test session shares, done once in the background however many pytest-xdist workers run it.

The first worker to ``start`` a task claims it (a file lock in a folder every worker sees) and runs it in a
thread; each result is published as a file there, atomically, and every worker's ``result`` waits for that file.
Without xdist there is one worker and the same code runs. A task that raises publishes the error, so a reader
fails with it at once instead of waiting out its timeout."""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
import time
import traceback
from pathlib import Path

from filelock import FileLock

from kentropy.core.io import atomic_file


def shared_folder(tmp_path_factory) -> Path:
    """A folder of this session that every xdist worker sees (their own temporary folders' parent)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def several_workers() -> bool:
    """Whether other workers of this session may still read a task's results after this one ends."""
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1


class Failed:
    """A task's error, published instead of its result."""

    def __init__(self, text: str):
        self.text = text


class SharedTask:
    """Task ``name`` of the session: ``start`` it (once per session), read its ``result``s."""

    def __init__(self, folder: Path, name: str):
        self.folder = folder / name
        self.name = name
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()  #: set when the session ends and no other worker waits for the task

    def start(self, work) -> None:
        """Run ``work(self)`` in a thread unless a worker of this session has started the task."""
        with FileLock(str(self.folder) + ".lock"):
            if self.folder.exists():
                return
            self.folder.mkdir(parents=True)

        def run():
            try:
                work(self)
            except BaseException:
                self.publish("error", Failed(traceback.format_exc()))

        self.thread = threading.Thread(target=run, name=self.name, daemon=True)
        self.thread.start()

    def publish(self, key: str, value) -> None:
        with atomic_file(self.folder / f"{key}.pickle") as tmp:
            tmp.write_bytes(pickle.dumps(value))

    def result(self, key: str, timeout: float):
        """The value published under ``key``, waiting up to ``timeout`` seconds for it."""
        path, error = self.folder / f"{key}.pickle", self.folder / "error.pickle"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if error.exists():
                raise AssertionError(f"{self.name} failed:\n{pickle.loads(error.read_bytes()).text}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no {key} after {timeout} s")
            time.sleep(0.2)
        value = pickle.loads(path.read_bytes())
        if isinstance(value, Failed):
            raise AssertionError(f"{self.name} failed:\n{value.text}")
        return value

    def end(self) -> None:
        """At the end of this worker's session: wait for the task when another worker may still need it, else
        ask it to stop (a task that does not look at ``stop`` ends with the session's process)."""
        if self.thread is None:
            return
        if several_workers():
            self.thread.join()
        else:
            self.stop.set()
            self.thread.join(timeout=30)


@contextlib.contextmanager
def in_background(tmp_path_factory, name: str, work, needed: bool):
    """A session fixture's body: ``work`` as the session's task ``name`` while the session runs, when ``needed``
    (else None)."""
    if not needed:
        yield None
        return
    task = SharedTask(shared_folder(tmp_path_factory), name)
    task.start(work)
    try:
        yield task
    finally:
        task.end()

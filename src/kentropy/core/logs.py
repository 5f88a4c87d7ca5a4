"""Per-rule logs: a Snakemake script sends its logging, warnings and progress bars to its log file."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
import traceback
from collections.abc import Callable, Iterator
from typing import TextIO

#: Seconds between two lines of one progress bar in a log file (its first and last frames always appear).
BAR_INTERVAL = 30.0


class BarLines(io.TextIOBase):
    """A log file's text stream on which progress bars (tqdm's frames, each after a carriage return) become
    lines: a bar's first frame, then at most one every ``interval`` seconds, then its last, instead of every
    frame run together on one line. Other text passes unchanged. Terminals keep their live bars: only
    streams that are not one get this (``for_log``)."""

    def __init__(self, stream: TextIO, interval: float = BAR_INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.stream, self.interval, self.clock = stream, interval, clock
        self.pending: str | None = None  #: the latest frame not yet written
        self.shown = -math.inf  #: when the current bar last wrote a line (-inf: a new bar)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        head, *frames = text.split("\r")
        if head:
            if self.pending is not None or self.shown > -math.inf:  # text after a bar ends it
                self._flush_pending()
                self.shown = -math.inf
                head = head[1:] if head.startswith("\n") else head  # tqdm's own line end after its last frame
            self.stream.write(head)
        for frame in frames:
            frame = frame.rstrip()
            if not frame:
                continue
            if self.clock() - self.shown >= self.interval:
                self.pending = None
                self._line(frame)
            else:
                self.pending = frame
        return len(text)

    def _line(self, frame: str) -> None:
        self.stream.write(frame + "\n")
        self.shown = self.clock()

    def _flush_pending(self) -> None:
        if self.pending is not None:
            self._line(self.pending)
            self.pending = None

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        if not self.closed:
            self._flush_pending()
        super().close()  # flushes the stream; the file itself stays its owner's to close


class Phases:
    """Wall seconds of a job's phases, for its log's closing ``time:`` line (bench/job_floor.py reads it): each
    ``lap(name)`` adds the time since the previous lap (or since the start) to ``name``."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock, self.seconds = clock, {}
        self.last = clock()

    def lap(self, name: str) -> None:
        now = self.clock()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.last
        self.last = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.seconds.items())


def for_log(stream: TextIO) -> TextIO:
    """``stream`` as a log should get it: unchanged on a terminal (live bars), else with ``BarLines``."""
    return stream if stream.isatty() else BarLines(stream)


@contextlib.contextmanager
def log_to(path: str) -> Iterator[logging.Logger]:
    """Redirect stdout, stderr (progress bars as ``BarLines``, warnings) and the root logger to ``path`` for the
    block. An exception leaving the block is written to the log (traceback, then the one-line error) before it
    propagates, so the job's log holds its failure (Snakemake prints the log of a failed job)."""
    with open(path, "w", buffering=1) as file, BarLines(file) as stream:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            handler = logging.StreamHandler(stream)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root = logging.getLogger()
            root.addHandler(handler)
            root.setLevel(logging.INFO)
            try:
                yield logging.getLogger("kentropy")
            except BaseException as err:
                stream.write(traceback.format_exc())
                stream.write(f"error: {type(err).__name__}: {err}\n")
                raise
            finally:
                root.removeHandler(handler)

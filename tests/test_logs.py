"""A job's log file: progress bars as a few lines (kentropy.core.logs), the job's error at its end."""

import io

import pytest
from tqdm import tqdm

from kentropy.core.logs import BarLines, for_log, log_to


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_bar_writes_its_first_frame_one_line_per_interval_and_its_last():
    out, clock = io.StringIO(), Clock()
    lines = BarLines(out, interval=30, clock=clock)
    lines.write("starting\n")
    for second in range(0, 100, 5):  # tqdm's frames: a carriage return, the frame, padding
        clock.now = second
        lines.write(f"\rtrain: {second}/100   ")
    lines.write("\rtrain: 100/100\n")  # the last frame and the line end tqdm writes when the bar closes
    lines.write("done\n")
    assert (
        out.getvalue() == "starting\ntrain: 0/100\ntrain: 30/100\ntrain: 60/100\ntrain: 90/100\ntrain: 100/100\ndone\n"
    )
    assert "\r" not in out.getvalue()


def test_a_second_bar_starts_with_its_own_first_frame_and_a_pending_frame_is_not_lost():
    out, clock = io.StringIO(), Clock()
    with BarLines(out, interval=30, clock=clock) as lines:
        lines.write("\ra 0/2")
        clock.now = 1
        lines.write("\ra 1/2")  # within the interval: held back
        lines.write("log line\n")  # other text ends the bar: its latest frame comes first
        lines.write("\rb 0/3")
        clock.now = 2
        lines.write("\rb 2/3")  # held back until the stream closes
    assert out.getvalue() == "a 0/2\na 1/2\nlog line\nb 0/3\nb 2/3\n"


def test_a_real_tqdm_bar_in_a_job_log_is_a_few_lines(tmp_path):
    path = tmp_path / "job.log"
    with pytest.raises(ValueError), log_to(str(path)) as log:
        log.info("training")
        for _ in tqdm(range(5000), desc="steps", mininterval=0):  # a frame per step, as fast as it goes
            pass
        raise ValueError("a bad step")
    text = path.read_text()
    assert "\r" not in text and text.count("steps:") <= 3 and "steps: 100%" in text
    assert text.rstrip().endswith("error: ValueError: a bad step") and "INFO kentropy: training" in text


def test_a_terminal_keeps_its_live_bars():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal, file = Terminal(), io.StringIO()
    assert for_log(terminal) is terminal and isinstance(for_log(file), BarLines)


def test_phases_add_each_lap_to_its_name():
    from kentropy.core.logs import Phases

    clock = Clock()
    phases = Phases(clock)
    for name, now in (("setup", 2.0), ("train", 3.0), ("retention", 3.5), ("train", 4.0)):
        clock.now = now
        phases.lap(name)
    assert phases.seconds == {"setup": 2.0, "train": 1.5, "retention": 0.5}
    assert str(phases) == "setup 2.00 s, train 1.50 s, retention 0.50 s"

"""The monitor section as DeepSpeed reads it (the events themselves are read back in tests/test_dag_outputs.py)."""

from __future__ import annotations

import copy
from pathlib import Path

from kentropy.training.monitor import Monitor, retention_events

from .test_config import SCHEMA, default


def test_backends_become_deepspeed_sections_under_one_folder_per_job(tmp_path):
    from deepspeed.monitor.config import get_monitor_config

    from kentropy.core.config import validate_config

    config = default()
    config["monitor"] = {"csv": False, "wandb": {"enabled": True}}
    validate_config(config, SCHEMA)
    monitor = Monitor.from_config(config, str(tmp_path / "logs/tiny/monitor"), "tiny/step25/original/baseline")
    sections = monitor.deepspeed_sections()
    assert set(sections) == {"tensorboard", "wandb"}
    assert sections["tensorboard"]["output_path"] + "/" + sections["tensorboard"]["job_name"] == monitor.folder(
        "tensorboard"
    )
    assert sections["wandb"] == {"enabled": True, "project": "knowledge-entropy", "group": "tiny", "team": None}
    parsed = get_monitor_config(sections)  # DeepSpeed's own validation of the sections
    assert parsed.tensorboard.enabled and parsed.wandb.enabled and not parsed.csv_monitor.enabled
    env = monitor.environment()
    assert env["WANDB_MODE"] == "offline" and env["WANDB_DIR"].endswith("wandb/tiny/step25/original/baseline")
    assert Monitor.from_json(monitor.to_json()) == monitor
    off = copy.deepcopy(config)
    off["monitor"] = {"tensorboard": False, "csv": False}
    validate_config(off, SCHEMA)
    assert not Monitor.from_config(off, "m", "j").enabled


def test_retention_events_are_the_mean_score_per_split_and_kind():
    rows = [
        {"split": "paraphrase", "kind": "memorization", "per_token": -1.0, "released": -0.5},
        {"split": "paraphrase", "kind": "memorization", "per_token": -3.0, "released": -1.5},
        {"split": "once", "kind": "semantic", "per_token": -2.0, "released": -1.0},
    ]
    events = dict(((name, step), value) for name, value, step in retention_events(rows, 40))
    assert events[("Retention/paraphrase/memorization/per_token", 40)] == -2.0
    assert events[("Retention/paraphrase/memorization/released", 40)] == -1.0
    assert events[("Retention/once/semantic/per_token", 40)] == -2.0 and len(events) == 4


def test_wandb_offline_writes_a_run_without_network(tmp_path):
    """``monitor.wandb`` with ``mode: offline`` through DeepSpeed's own W&B monitor, in a fresh process (it
    starts a process group): an offline run folder under the job's monitor folder, holding the logged events.
    Needs the optional ``wandb`` package."""
    import os
    import subprocess
    import sys

    import pytest

    pytest.importorskip("wandb")
    code = f"""
import wandb
from kentropy.core.config import validate_config
from kentropy.training.continual import _init_distributed, make_engine
from kentropy.training.monitor import Monitor
from kentropy.core.plan import Plan
from tests.conftest import tiny_model
from tests.test_config import SCHEMA, default

config = default()
config["monitor"] = {{"tensorboard": False, "csv": False, "wandb": {{"enabled": True}}}}
validate_config(config, SCHEMA)
monitor = Monitor.from_config(config, {str(tmp_path / "monitor")!r}, "tiny/step25/original/baseline")
_init_distributed("gloo")
run = next(iter(Plan.from_config(config).runs.values()))
engine = make_engine(tiny_model("olmo").float(), run, 1, False, monitor=monitor)
engine.monitor.write_events([("Train/loss", 1.5, 1), ("Train/loss", 1.25, 2)])
wandb.finish()
"""
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "monitor/wandb/tiny/step25/original/baseline/wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and b"Train/loss" in runs[0].read_bytes()

"""The monitor section as DeepSpeed reads it (the events themselves are read back in tests/test_workflow.py)."""

from __future__ import annotations

import copy

from kentropy.monitor import Monitor, retention_events

from .test_config import SCHEMA, default


def test_backends_become_deepspeed_sections_under_one_folder_per_job(tmp_path):
    from deepspeed.monitor.config import get_monitor_config

    from kentropy.config import validate_config

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

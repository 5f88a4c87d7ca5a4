"""Live logs of a continual-training job through DeepSpeed's monitor backends (schema ``monitor``).

DeepSpeed builds its TensorBoard, CSV and W&B writers from the ``tensorboard``, ``csv_monitor`` and ``wandb``
sections of its config, and writes its own ``Train/Samples/*`` events when any is on; the trainer adds the
quantities a researcher watches (``step_events``, ``retention_events``) with ``engine.monitor.write_events``.
A job's files live under ``logs/<experiment>/monitor/<backend>/<model>/step<step>/<variant>/<run>/``: one
place per job, written by rank 0 only. None of it is a rule output, and the settings are read from the
config, not a param: turning a backend on or off reruns nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..core.plan import Spec

BACKEND_FOLDERS = {"tensorboard": "tensorboard", "csv_monitor": "csv", "wandb": "wandb"}


@dataclass(frozen=True)
class Monitor(Spec):
    """Which backends write, and where one training job writes them."""

    tensorboard: bool
    csv: bool
    wandb: dict  #: schema ``monitor.wandb``: enabled, project, group, team, mode
    root: str  #: ``logs/<experiment>/monitor``
    job: str  #: ``<model>/step<step>/<variant>/<run>``

    @classmethod
    def from_config(cls, config: dict, root: str, job: str) -> Monitor:
        """The ``monitor`` section of a validated config (its defaults filled), for the job ``job``."""
        section = config["monitor"]
        wandb = {**section["wandb"], "group": section["wandb"]["group"] or config["experiment"]}
        return cls(section["tensorboard"], section["csv"], wandb, root, job)

    @property
    def enabled(self) -> bool:
        return self.tensorboard or self.csv or self.wandb["enabled"]

    def folder(self, backend: str) -> str:
        """Where ``backend`` (a DeepSpeed section name) writes this job's files."""
        return f"{self.root}/{BACKEND_FOLDERS[backend]}/{self.job}"

    def deepspeed_sections(self) -> dict:
        """The monitor sections of a DeepSpeed config. DeepSpeed writes to ``output_path/job_name``."""
        sections = {}
        for backend, on in (("tensorboard", self.tensorboard), ("csv_monitor", self.csv)):
            if on:
                sections[backend] = {
                    "enabled": True,
                    "output_path": f"{self.root}/{BACKEND_FOLDERS[backend]}",
                    "job_name": self.job,
                }
        if self.wandb["enabled"]:
            # DeepSpeed's W&B section has no mode or folder: wandb reads them from the environment (``environment``).
            sections["wandb"] = {k: self.wandb[k] for k in ("enabled", "project", "group", "team")}
        return sections

    def environment(self) -> dict[str, str]:
        """Environment for wandb: its mode (offline needs no network) and this job's folder."""
        if not self.wandb["enabled"]:
            return {}
        os.makedirs(self.folder("wandb"), exist_ok=True)
        return {"WANDB_MODE": self.wandb["mode"], "WANDB_DIR": self.folder("wandb"), "WANDB_NAME": self.job}


def step_events(step: int, loss: float, lr: float, tokens_per_s: float) -> list[tuple[str, float, int]]:
    """What every optimizer step logs: its mean training loss, the learning rate it used, and the training
    tokens per second of the step (all ranks)."""
    return [("Train/loss", loss, step), ("Train/lr", lr, step), ("Train/tokens_per_s", tokens_per_s, step)]


def retention_events(rows: list[dict], step: int) -> list[tuple[str, float, int]]:
    """Mean of each probe score per split and kind, at ``step``: the retention curve as it is drawn."""
    import pandas as pd

    from ..core.vocabulary import SCORES

    table = pd.DataFrame(rows)
    means = table.groupby(["split", "kind"])[list(SCORES)].mean()
    return [
        (f"Retention/{split}/{kind}/{score}", float(means.loc[(split, kind), score]), step)
        for split, kind in means.index
        for score in SCORES
    ]

"""Step-axis figures drawn against tokens seen, on hand-made tables and the shipped configs."""

import numpy as np
import pandas as pd
import pytest

from kentropy.core.config import load_config
from kentropy.report.figure_registry import FIGURES
from kentropy.sources.manifests import ManifestError, tokens_seen

from .conftest import ROOT


def config(name: str) -> dict:
    return load_config(ROOT / "config" / name)


def test_tokens_seen_from_manifests_pretraining_or_the_config():
    olmo = tokens_seen(config("olmo-1b.yaml"), "olmo-1b")
    assert olmo[117850] == 117850 * 2048 * 2048  # the Hub's "step117850-tokens494B"
    tiny = config("config.yaml")
    assert tokens_seen(tiny, "tiny")[1706] == 1706 * 16 * 128  # pretrain.batch_size x seq_len per step
    local = {"models": {"mine": {"source": "local", "path": "/x/step{step}", "steps": [5, 10]}}}
    with pytest.raises(ManifestError, match=r"config: models.mine.tokens_per_step: needed for figures.x_axis"):
        tokens_seen(local, "mine")
    local["models"]["mine"]["tokens_per_step"] = 1000
    assert tokens_seen(local, "mine") == {5: 5000, 10: 10000}


def test_paper_configs_draw_against_tokens_and_the_default_against_steps():
    for name in ("olmo-1b.yaml", "olmo-7b.yaml", "olmo2-1b.yaml", "pythia-1.4b.yaml"):
        cfg = config(name)
        options = FIGURES["figure4"].options(cfg)
        assert set(options["tokens"]) == set(cfg["models"]), name
    tiny = config("config.yaml")
    assert FIGURES["figure3"].options(tiny) == {"tokens": None}
    assert FIGURES["retention"].options(tiny) == {"tokens": None}


def test_figures_put_checkpoints_at_their_tokens():
    from kentropy.report import figures

    entropy = pd.DataFrame({"model": "m", "trajectory": 0, "step": [10, 20],
                            "metric": "knowledge_entropy", "layer": np.nan,
                            "value": [3.0, 2.5]})  # fmt: skip
    fig = figures.figure3(entropy, tokens={"m": {10: 40_000, 20: 80_000}})
    line = fig.axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [40_000, 80_000] and fig.axes[0].get_xlabel() == "tokens seen in pretraining"
    fig = figures.figure3(entropy)
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [10, 20]
    retention = pd.DataFrame({"model": "m", "trajectory": 0, "step": 10, "variant": "original", "run": "base",
                              "seed": 0,
                              "train_step": [3, 5], "split": "once", "kind": "all", "score": "per_token",
                              "P": [-2.0, -2.5]})  # fmt: skip
    fig = figures.retention(retention, tokens={"m": {10: 40_000}}, train_tokens_per_step=512)
    ax = next(a for a in fig.axes if a.get_lines())
    assert list(ax.get_lines()[0].get_xdata()) == [3 * 512, 5 * 512]

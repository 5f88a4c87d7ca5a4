"""The paper's entropy figures from the long entropy table (seaborn)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

_TITLES = {
    "knowledge_entropy": "Knowledge entropy",
    "attention_entropy": "Attention entropy",
    "next_token_entropy": "Next-token entropy",
}


def figure3(entropy: pd.DataFrame) -> plt.Figure:
    """Knowledge, attention and next-token entropy (whole model) vs pretraining step, a line per model."""
    whole = entropy[entropy.layer.isna() & entropy.metric.isin(list(_TITLES))]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (metric, title) in zip(axes, _TITLES.items()):
        sns.lineplot(data=whole[whole.metric == metric], x="step", y="value", hue="model", marker="o", ax=ax)
        ax.set(title=title, xlabel="pretraining step", ylabel="entropy (nats)")
    fig.tight_layout()
    return fig


def figure8(entropy: pd.DataFrame) -> plt.Figure:
    """Knowledge entropy of each layer vs pretraining step, a panel per model."""
    per_layer = entropy[(entropy.metric == "knowledge_entropy") & entropy.layer.notna()].copy()
    per_layer["layer"] = per_layer.layer.astype(int)
    grid = sns.relplot(data=per_layer, x="step", y="value", hue="layer", col="model", kind="line", marker="o",
                       palette="viridis", height=3.6, aspect=1.3, facet_kws={"sharey": False})
    grid.set_axis_labels("pretraining step", "knowledge entropy (nats)")
    return grid.figure


def save(fig: plt.Figure, paths: list[str]) -> None:
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)

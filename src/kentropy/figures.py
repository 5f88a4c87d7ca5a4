"""The figures, each drawn from one aggregated table (seaborn); ``kentropy.figure_registry`` lists them."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from . import tables  # noqa: E402

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
    grid = sns.relplot(
        data=per_layer,
        x="step",
        y="value",
        hue="layer",
        col="model",
        kind="line",
        marker="o",
        palette="viridis",
        height=3.6,
        aspect=1.3,
        facet_kws={"sharey": False},
    )
    grid.set_axis_labels("pretraining step", "knowledge entropy (nats)")
    return grid.figure


def save(fig: plt.Figure, paths: list[str]) -> None:
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def figure4(continual: pd.DataFrame, baseline: str) -> plt.Figure:
    """Baseline run per checkpoint step: probe score P and downstream D before/after, then A and F."""
    wide = tables.totals(continual[(continual.run == baseline) & (continual.variant == "original")])
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    for ax, (name, label) in zip(axes[:2], (("P", "probe log-probability P"), ("D", "downstream accuracy D"))):
        long = wide.melt(
            id_vars=["model", "step"], value_vars=[f"{name}_before", f"{name}_after"], var_name="state", value_name=name
        )
        long["state"] = long.state.str.split("_").str[1]
        sns.lineplot(data=long, x="step", y=name, hue="model", style="state", marker="o", ax=ax)
        ax.set(title=label, xlabel="pretraining step of the checkpoint", ylabel=name)
    for ax, (name, label) in zip(axes[2:], (("A", "acquisition A (%)"), ("F", "forgetting F (%)"))):
        sns.lineplot(data=wide, x="step", y=name, hue="model", marker="o", ax=ax)
        ax.set(title=label, xlabel="pretraining step of the checkpoint", ylabel=name)
    fig.suptitle(f"Continual knowledge learning, run '{baseline}'")
    fig.tight_layout()
    return fig


def figure11(continual: pd.DataFrame, baseline: str) -> plt.Figure:
    """Acquisition of the once vs the paraphrase split, per probe kind, across checkpoint steps."""
    acq = continual[
        (continual.metric == "acquisition")
        & (continual.run == baseline)
        & (continual.variant == "original")
        & continual.split.isin(["paraphrase", "once"])
    ]
    grid = sns.relplot(
        data=acq,
        x="step",
        y="value",
        hue="split",
        style="model",
        col="kind",
        kind="line",
        marker="o",
        col_order=["memorization", "semantic", "composition", "all"],
        height=3.4,
        aspect=1.1,
        facet_kws={"sharey": False},
    )
    grid.set_axis_labels("pretraining step of the checkpoint", "acquisition A (%)")
    grid.figure.suptitle(f"Once vs paraphrase injection, run '{baseline}'", y=1.03)
    return grid.figure


def corpus_runs(runs: dict[str, dict], baseline: str) -> dict[str, str]:
    """{run: corpus} for the baseline and the runs that differ from it only in their corpus."""
    ref = {k: v for k, v in runs[baseline].items() if k != "corpus"}
    return {
        name: spec["corpus"] for name, spec in runs.items() if {k: v for k, v in spec.items() if k != "corpus"} == ref
    }


def figure12(continual: pd.DataFrame, runs: dict[str, dict], baseline: str) -> plt.Figure:
    """Acquisition and forgetting across checkpoint steps, one line per continual-training corpus."""
    corpora = corpus_runs(runs, baseline)
    wide = tables.totals(continual[continual.run.isin(list(corpora)) & (continual.variant == "original")])
    wide["corpus"] = wide.run.map(corpora)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, (name, label) in zip(axes, (("A", "acquisition A (%)"), ("F", "forgetting F (%)"))):
        sns.lineplot(data=wide, x="step", y=name, hue="corpus", style="model", marker="o", ax=ax)
        ax.set(title=label, xlabel="pretraining step of the checkpoint", ylabel=name)
    fig.tight_layout()
    return fig


def resuscitation_grid(table: pd.DataFrame, axis: str, fixed: float, steps: list[int]) -> plt.Figure:
    """A and F against q (at p = fixed) or p (at q = fixed), a line per checkpoint step of ``steps``; dashed
    lines are the original checkpoints trained the same way."""
    table = table[table.step.isin(steps)]
    other = "p" if axis == "q" else "q"
    grid = table[table[other] == fixed]
    originals = table[table.variant == "original"]
    steps = sorted(table.step.unique())
    palette = dict(zip(steps, sns.color_palette("viridis", len(steps))))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, (name, label) in zip(axes, (("A", "acquisition A (%)"), ("F", "forgetting F (%)"))):
        sns.lineplot(data=grid, x=axis, y=name, hue="step", style="run", palette=palette, marker="o", ax=ax)
        for row in originals.itertuples():
            ax.axhline(getattr(row, name), color=palette[row.step], linestyle="--", linewidth=1)
        unit = "p (% of memory vectors)" if axis == "p" else "amplifying factor q"
        ax.set(title=f"{label}, {other} = {fixed:g}", xlabel=unit, ylabel=name)
    fig.tight_layout()
    return fig


def resuscitation_across_steps(table: pd.DataFrame, variant: str) -> plt.Figure:
    """A and F against the checkpoint step: the originals and one resuscitated variant, per run."""
    rows = table[table.variant.isin(["original", variant])]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, (name, label) in zip(axes, (("A", "acquisition A (%)"), ("F", "forgetting F (%)"))):
        sns.lineplot(
            data=rows, x="step", y=name, hue="variant", hue_order=["original", variant], style="run", marker="o", ax=ax
        )
        ax.set(title=label, xlabel="pretraining step of the checkpoint", ylabel=name)
    fig.tight_layout()
    return fig


def retention(table: pd.DataFrame) -> plt.Figure:
    """Probe score P (all probe kinds) during continual training, a line per starting checkpoint, a panel
    per split: paraphrased knowledge climbs with each injection, once-seen knowledge fades (Chang et al.)."""
    rows = table[(table.kind == "all") & table.split.isin(["paraphrase", "once"])].rename(
        columns={"train_step": "training step", "step": "checkpoint step"}
    )
    order = [str(s) for s in sorted(rows["checkpoint step"].unique())]  # one legend entry per checkpoint
    rows = rows.assign(**{"checkpoint step": rows["checkpoint step"].astype(str)})
    grid = sns.relplot(
        data=rows,
        x="training step",
        y="P",
        hue="checkpoint step",
        hue_order=order,
        col="split",
        row="model",
        kind="line",
        marker="o",
        palette="viridis",
        height=3.4,
        aspect=1.3,
    )
    grid.set_axis_labels("continual-training step", "probe log-probability P")
    return grid.figure

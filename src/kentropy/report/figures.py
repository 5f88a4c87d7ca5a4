"""The figures, each drawn from one aggregated table (seaborn); ``kentropy.report.figure_registry`` lists them."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..analysis import continual_tables as tables  # noqa: E402
from ..analysis.outcomes import mean_interval  # noqa: E402
from ..measurement.meters import METRICS, per_layer  # noqa: E402
from ..sources.fictional_knowledge import ALL, PROBE_KINDS, SPLITS  # noqa: E402


def checkpoint_x(table: pd.DataFrame, tokens: dict | None) -> tuple[pd.DataFrame, str]:
    """``table`` with an ``x`` column, and its label: the checkpoint's pretraining step, or (``tokens``:
    model -> step -> tokens, ``kentropy.sources.manifests.tokens_seen``) the tokens it had seen."""
    if tokens is None:
        return table.assign(x=table.step), "pretraining step of the checkpoint"
    seen = [tokens[model][step] for model, step in zip(table.model, table.step)]
    return table.assign(x=seen), "tokens seen in pretraining"


def seed_interval(values) -> tuple[float, float]:
    """Seaborn's error band over the rows at one x: the 95% Student-t interval of their mean (none for one
    row). Drawn over ``trajectory_means`` rows, it is the tables' interval
    (kentropy.analysis.continual_tables.over_replicates): over the trajectories, or over the seeds of a single
    trajectory."""
    return mean_interval(values)[1:]


def trajectory_means(table: pd.DataFrame, values: list[str]) -> pd.DataFrame:
    """With several trajectories, ``table``'s ``values`` averaged over the seeds inside each trajectory (one
    row per trajectory, so a band is over trajectories); with one, ``table`` unchanged (a band over seeds)."""
    if table.trajectory.nunique() < 2 or "seed" not in table:
        return table
    keys = [c for c in table.columns if c not in values and c != "seed"]
    return table.groupby(keys, dropna=False, sort=False)[values].mean().reset_index()


def _replicates(table: pd.DataFrame) -> str:
    """'T trajectories × S seeds' of the rows a figure draws (the fewest of either behind a point)."""
    per_trajectory = table.groupby(["model", "run", "step", "trajectory"]).seed.nunique()
    seeds = int(per_trajectory.min())
    trajectories = int(per_trajectory.groupby(["model", "run", "step"]).size().min())
    return tables.replicates_label(trajectories, seeds)


#: Panels per row of a figure with one panel per registered metric.
PANELS_PER_ROW = 3


def figure3(entropy: pd.DataFrame, tokens: dict | None = None) -> plt.Figure:
    """Every registered metric (kentropy.measurement.meters; whole model) vs pretraining step (or tokens), a panel per
    metric in registration order (rows of ``PANELS_PER_ROW``), a line per model."""
    whole, xlabel = checkpoint_x(entropy[entropy.layer.isna()], tokens)
    metrics = [m for m in METRICS.values() if m.name in set(whole.metric)]
    trajectories = int(whole.groupby(["model", "step"]).trajectory.nunique().min())
    rows = -(-len(metrics) // PANELS_PER_ROW)
    columns = min(len(metrics), PANELS_PER_ROW)
    fig, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.6 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        sns.lineplot(data=whole[whole.metric == metric.name], x="x", y="value", hue="model", marker="o",
                     errorbar=seed_interval, ax=ax)  # fmt: skip
        ax.set(title=metric.title, xlabel=xlabel, ylabel=metric.unit)
    for ax in axes.flat[len(metrics) :]:
        ax.remove()
    fig.suptitle(_trajectory_bands(trajectories))
    fig.tight_layout()
    return fig


def _trajectory_bands(trajectories: int) -> str:
    if trajectories < 2:
        return "1 pretraining trajectory (no band)"
    return f"mean of {trajectories} pretraining trajectories; bands: 95% Student-t interval over them"


def figure8(entropy: pd.DataFrame, tokens: dict | None = None) -> plt.Figure:
    """Each layer's value of every registered per-layer metric vs pretraining step (or tokens): a row per
    metric (knowledge entropy first, the paper's Figure 8), a column per model, a line per layer."""
    layers, xlabel = checkpoint_x(entropy[entropy.layer.notna()], tokens)
    layers["layer"] = layers.layer.astype(int)
    metrics = [m for m in METRICS.values() if per_layer(m) and m.name in set(layers.metric)]
    models = sorted(layers.model.unique())
    fig, axes = plt.subplots(len(metrics), len(models), figsize=(4.7 * len(models), 3.4 * len(metrics)), squeeze=False)
    for row, metric in zip(axes, metrics):
        for ax, model in zip(row, models):
            data = layers[(layers.metric == metric.name) & (layers.model == model)]
            sns.lineplot(data=data, x="x", y="value", hue="layer", marker="o", palette="viridis",
                         errorbar=seed_interval, ax=ax)  # fmt: skip
            ax.set(title=f"{model}: {metric.title}", xlabel=xlabel, ylabel=metric.unit)
    fig.suptitle(_trajectory_bands(int(layers.groupby(["model", "step"]).trajectory.nunique().min())))
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, paths: list[str]) -> None:
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def figure4(continual: pd.DataFrame, baseline: str, tokens: dict | None = None) -> plt.Figure:
    """Baseline run per checkpoint step (or tokens): probe score P and downstream D before/after, then A and F."""
    wide = tables.totals(continual[(continual.run == baseline) & (continual.variant == "original")])
    replicates = _replicates(wide)
    wide = trajectory_means(wide, list(tables.TOTALS))
    wide, xlabel = checkpoint_x(wide, tokens)
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    for ax, (name, label) in zip(axes[:2], (("P", "probe log-probability P"), ("D", "downstream accuracy D"))):
        long = wide.melt(
            id_vars=["model", "x"], value_vars=[f"{name}_before", f"{name}_after"], var_name="state", value_name=name
        )
        long["state"] = long.state.str.split("_").str[1]
        sns.lineplot(data=long, x="x", y=name, hue="model", style="state", marker="o", errorbar=seed_interval, ax=ax)
        ax.set(title=label, xlabel=xlabel, ylabel=name)
    for ax, (name, label) in zip(axes[2:], (("A", "acquisition A (%)"), ("F", "forgetting F (%)"))):
        sns.lineplot(data=wide, x="x", y=name, hue="model", marker="o", errorbar=seed_interval, ax=ax)
        ax.set(title=label, xlabel=xlabel, ylabel=name)
    fig.suptitle(f"Continual knowledge learning, run '{baseline}' ({replicates}; bands: 95% interval)")
    fig.tight_layout()
    return fig


def figure11(continual: pd.DataFrame, baseline: str, tokens: dict | None = None) -> plt.Figure:
    """Acquisition of the once vs the paraphrase split, per probe kind, across checkpoint steps (or tokens)."""
    acq = continual[
        (continual.metric == "acquisition")
        & (continual.run == baseline)
        & (continual.variant == "original")
        & continual.split.isin(list(SPLITS))
    ]
    replicates = _replicates(acq)
    acq, xlabel = checkpoint_x(trajectory_means(acq, ["before", "after", "value"]), tokens)
    grid = sns.relplot(
        data=acq,
        x="x",
        y="value",
        hue="split",
        style="model",
        col="kind",
        kind="line",
        marker="o",
        col_order=[*PROBE_KINDS, ALL],
        errorbar=seed_interval,
        height=3.4,
        aspect=1.1,
        facet_kws={"sharey": False},
    )
    grid.set_axis_labels(xlabel, "acquisition A (%)")
    grid.figure.suptitle(f"Once vs paraphrase injection, run '{baseline}' ({replicates})", y=1.03)
    return grid.figure


def corpus_runs(runs: dict[str, dict], baseline: str) -> dict[str, str]:
    """{run: corpus} for the baseline and the runs that differ from it only in their corpus (and seeds)."""

    def setting(spec):
        return {k: v for k, v in spec.items() if k not in ("corpus", "seeds")}

    return {name: spec["corpus"] for name, spec in runs.items() if setting(spec) == setting(runs[baseline])}


def figure12(continual: pd.DataFrame, runs: dict[str, dict], baseline: str, tokens: dict | None = None) -> plt.Figure:
    """Acquisition and forgetting across checkpoint steps (or tokens), one line per continual-training corpus."""
    corpora = corpus_runs(runs, baseline)
    wide = tables.totals(continual[continual.run.isin(list(corpora)) & (continual.variant == "original")])
    replicates = _replicates(wide)
    wide, xlabel = checkpoint_x(trajectory_means(wide, list(tables.TOTALS)), tokens)
    wide["corpus"] = wide.run.map(corpora)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, (name, label) in zip(axes, (("A", "acquisition A (%)"), ("F", "forgetting F (%)"))):
        sns.lineplot(data=wide, x="x", y=name, hue="corpus", style="model", marker="o", errorbar=seed_interval, ax=ax)
        ax.set(title=label, xlabel=xlabel, ylabel=name)
    fig.suptitle(f"Acquisition and forgetting by continual-training corpus ({replicates}; bands: 95% interval)")
    fig.tight_layout()
    return fig


def _bands(ax, table: pd.DataFrame, x: str, y: str, hue: str, palette: dict) -> None:
    """The 95% interval over seeds (``{y}_ci_low``/``{y}_ci_high`` of the resuscitation table) as a band
    under each line (none where a line has one seed)."""
    for (key, _), line in table.sort_values(x).groupby([hue, "run"], sort=False):
        ax.fill_between(line[x], line[f"{y}_ci_low"], line[f"{y}_ci_high"], color=palette[key], alpha=0.2, lw=0)


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
        _bands(ax, grid, axis, name, "step", palette)
        for row in originals.itertuples():
            ax.axhline(getattr(row, name), color=palette[row.step], linestyle="--", linewidth=1)
        unit = "p (% of memory vectors)" if axis == "p" else "amplifying factor q"
        ax.set(title=f"{label}, {other} = {fixed:g}", xlabel=unit, ylabel=name)
    fig.tight_layout()
    return fig


def resuscitation_across_steps(table: pd.DataFrame, variant: str, tokens: dict | None = None) -> plt.Figure:
    """A and F against the checkpoint step (or tokens): the originals and one resuscitated variant, per run."""
    rows, xlabel = checkpoint_x(table[table.variant.isin(["original", variant])], tokens)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, (name, label) in zip(axes, (("A", "acquisition A (%)"), ("F", "forgetting F (%)"))):
        sns.lineplot(
            data=rows, x="x", y=name, hue="variant", hue_order=["original", variant], style="run", marker="o", ax=ax
        )
        palette = dict(zip(["original", variant], sns.color_palette(n_colors=2)))
        _bands(ax, rows, "x", name, "variant", palette)
        ax.set(title=label, xlabel=xlabel, ylabel=name)
    fig.tight_layout()
    return fig


def retention(table: pd.DataFrame, tokens: dict | None = None, train_tokens_per_step: int | None = None) -> plt.Figure:
    """Probe score P (all probe kinds) during continual training, a line per starting checkpoint, a panel
    per split: paraphrased knowledge climbs with each injection, once-seen knowledge fades (Chang et al.).
    With ``tokens``, the x-axis counts continual-training tokens and the legend the checkpoints' tokens."""
    rows = table[(table.kind == ALL) & table.split.isin(list(SPLITS))]
    rows = trajectory_means(rows[["model", "trajectory", "step", "run", "seed", "train_step", "split", "P"]], ["P"])
    xlabel = "continual-training step"
    if tokens is not None:
        rows = rows.assign(train_step=rows.train_step * train_tokens_per_step, step=checkpoint_x(rows, tokens)[0].x)
        xlabel = "continual-training tokens"
    rows = rows.rename(columns={"train_step": "training step", "step": "checkpoint step"})
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
        errorbar=seed_interval,
        height=3.4,
        aspect=1.3,
    )
    grid.set_axis_labels(xlabel, "probe log-probability P")
    return grid.figure


def forgetting_curves(curves: pd.DataFrame, fits: pd.DataFrame) -> plt.Figure:
    """Forgetting curves (kentropy.analysis.forgetting): P of the injected items against the steps since their last
    injection (log scale), a colour per starting checkpoint, a panel per probe kind (all splits together);
    dots: the mean over items and seeds with the seeds' 95% interval; dotted: the fitted power law
    ``intercept - a ln t`` (means over seeds), the legend giving a per checkpoint."""
    points = curves[curves.split == ALL]
    lines = fits[(fits.split == ALL) & fits.exponent.notna()]
    kinds = [k for k in (*PROBE_KINDS, ALL) if k in set(points.kind)]
    models = sorted(points.model.unique())
    steps = sorted(points.step.unique())
    colours = dict(zip(steps, sns.color_palette("viridis", len(steps))))
    fig, axes = plt.subplots(len(models), len(kinds), figsize=(3.8 * len(kinds), 4.4 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        for ax, kind in zip(axes[row], kinds):
            for step in steps:
                at = points[(points.model == model) & (points.kind == kind) & (points.step == step)]
                if at.empty:
                    continue
                summary = [(t, *mean_interval(g.P)) for t, g in at.groupby("t", sort=True)]
                t, mean, low, high = (pd.Series(v, dtype=float) for v in zip(*summary))
                label = str(step)
                fit = lines[(lines.model == model) & (lines.kind == kind) & (lines.step == step)]
                if len(fit):
                    a, c = fit.exponent.mean(), fit.intercept.mean()
                    grid = pd.Series([fit.t_min.min(), fit.t_max.max()])
                    ax.plot(grid, c - a * np.log(grid), linestyle=":", color=colours[step])
                    label = f"{step}: a = {a:.3f}"
                ax.errorbar(t, mean, yerr=[mean - low.fillna(mean), high.fillna(mean) - mean], fmt="o", ms=4,
                            color=colours[step], label=label)  # fmt: skip
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
            ax.set(title=f"{model}: {kind}", xlabel="steps since the last injection", ylabel="probe log-probability P")
            ax.legend(title="checkpoint step", fontsize=7, title_fontsize=7, ncol=2, loc="upper center",
                      bbox_to_anchor=(0.5, -0.22))  # fmt: skip
    fig.tight_layout()
    return fig


def _over_trajectories(ax, table: pd.DataFrame, x: str, y: str, hue: str | None = None) -> None:
    """Mean line over trajectories with their 95% interval (one row per trajectory at each x)."""
    sns.lineplot(data=table, x=x, y=y, hue=hue, marker="o", errorbar=seed_interval, ax=ax)


def smi_figure(bins: pd.DataFrame, fits: pd.DataFrame, size: str) -> plt.Figure:
    """SMI (kentropy.analysis.smi; P by ``size``): left, the bins' mean accuracy against SMI at each checkpoint of the
    first trajectory (exact counts, corpus templates) with the fitted lines; then R² and the upper bound
    against the step, a line per count source and template kind, bands over trajectories."""
    fits = fits[fits["size"] == size].assign(setting=lambda t: t.counts + " counts, " + t.templates + " templates")
    bins = bins[(bins["size"] == size) & (bins.counts == "exact") & (bins.templates == "corpus")]
    first = bins[(bins.model == bins.model.min()) & (bins.trajectory == bins.trajectory.min())]
    steps = sorted(first.step.unique())
    colours = dict(zip(steps, sns.color_palette("viridis", len(steps))))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    line_fits = fits[(fits.counts == "exact") & (fits.templates == "corpus")]
    for step in steps:
        at = first[first.step == step]
        axes[0].scatter(at.smi, at.accuracy, s=12 + 3 * np.sqrt(at.facts), color=colours[step], label=str(step))
        fit = line_fits[(line_fits.model == at.model.iloc[0]) & (line_fits.trajectory == at.trajectory.iloc[0])
                        & (line_fits.step == step)]  # fmt: skip
        if len(fit) and np.isfinite(fit.slope.iloc[0]):
            axes[0].plot([0, 1], [fit.intercept.iloc[0], fit.upper_bound.iloc[0]], color=colours[step], lw=1)
    axes[0].set(xlabel=f"SMI (P = {size} of the parameter count)", ylabel="accuracy of the facts in the bin",
                title="accuracy vs SMI, first trajectory")  # fmt: skip
    axes[0].legend(title="checkpoint step", fontsize=7, title_fontsize=7, ncol=2)
    _over_trajectories(axes[1], fits, "step", "r2", "setting")
    axes[1].set(ylabel="R² of the fit over bins", xlabel="pretraining step of the checkpoint")
    _over_trajectories(axes[2], fits, "step", "upper_bound", "setting")
    axes[2].set(ylabel="upper bound (fit at SMI = 1)", xlabel="pretraining step of the checkpoint")
    for ax in axes[1:]:
        ax.legend(fontsize=7)
    fig.suptitle(_trajectory_bands(int(fits.groupby(["model", "step"]).trajectory.nunique().min())))
    fig.tight_layout()
    return fig


def specialization_figure(summary: pd.DataFrame, entropy: pd.DataFrame, concepts: pd.DataFrame) -> plt.Figure:
    """Parameter specialization (kentropy.measurement.specialization): PSS of each view, and what masking adds to it,
    against the step (bands over trajectories), knowledge entropy beside it, and the person concepts' peak PSS against
    their document count (log2 bins), a line per checkpoint step."""
    from ..measurement.meters import KNOWLEDGE_ENTROPY

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    keys = ["model", "trajectory", "step", "view"]
    long = summary.melt(keys, ["pss", "masking"], var_name="quantity")
    long = long.assign(series=long.view + ": " + long.quantity.map({"pss": "PSS", "masking": "PSS - PSS at k = 0"}))
    _over_trajectories(axes[0], long, "step", "value", "series")
    means = long.groupby(["series", "step"]).value.mean()  # the bands of few concepts can dwarf every mean
    axes[0].set_ylim(min(0.0, means.min()) - 0.1, means.max() + 0.5)
    axes[0].set(xlabel="pretraining step of the checkpoint", ylabel="PSS (mean over concepts of their peaks)")
    whole = entropy[(entropy.metric == KNOWLEDGE_ENTROPY) & entropy.layer.isna() & (entropy.variant == "original")]
    _over_trajectories(axes[1], whole, "step", "value")
    axes[1].set(xlabel="pretraining step of the checkpoint", ylabel="knowledge entropy")
    people = concepts[(concepts.view == "person") & concepts.frequency.notna()]
    people = people.assign(documents=2.0 ** np.floor(np.log2(people.frequency.clip(lower=1))))
    sns.lineplot(data=people, x="documents", y="pss", hue="step", palette="viridis", marker="o", errorbar=None,
                 legend="full", ax=axes[2])  # fmt: skip
    axes[2].set_xscale("log", base=2)
    axes[2].set(xlabel="documents naming the person (log2 bin)", ylabel="peak PSS of the person",
                title="PSS by the concept's exact frequency")  # fmt: skip
    fig.suptitle(_trajectory_bands(int(summary.groupby(["model", "step"]).trajectory.nunique().min())))
    fig.tight_layout()
    return fig


def pretraining_acquisition_figure(table: pd.DataFrame, fits: pd.DataFrame) -> plt.Figure:
    """Acquisition inside pretraining: the object log-probability of every fact against its exposures so far
    and against the steps since its last exposure (log2 bins, mean over facts and trajectories, a line per checkpoint),
    with the fitted exponents of kentropy.analysis.fact_tables.acquisition_fits in the titles."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    labels = {"exposures": "documents stating the fact trained on so far", "since": "steps since the last exposure"}
    for ax, x in zip(axes, ("exposures", "since")):
        seen = table[table[x] >= 1]
        seen = seen.assign(bin=2.0 ** np.floor(np.log2(seen[x])))
        sns.lineplot(
            data=seen,
            x="bin",
            y="logprob",
            hue="step",
            palette="viridis",
            marker="o",
            errorbar=None,
            legend="full",
            ax=ax,
        )  # every checkpoint step, not a continuous scale's ticks
        ax.set_xscale("log", base=2)
        a = fits[fits.x == x].exponent
        ax.set(xlabel=f"{labels[x]} (log2 bin)", ylabel="object log-probability",
               title=f"a = {a.mean():.3f} (logprob = c - a ln x; mean over {len(a)} trajectories)")  # fmt: skip
        ax.legend(title="checkpoint step", fontsize=7, title_fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def _lab_whole(lab: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The lab's whole-model rows of ``metric`` after step 0, with ``fraction`` = step / T of the cell's run."""
    rows = lab[(lab.metric == metric) & lab.layer.isna() & (lab.step > 0)]
    return rows.assign(fraction=rows.step / rows.total_steps)


def _fraction_axis(ax) -> None:
    ax.set_xscale("log")
    ax.axvline(0.15, color="grey", lw=0.8, ls=":")  # the rule's late window starts here (docs/lab.md)
    ax.set_xlabel("step / T (log; dotted: the late window)")


def lab_trajectories(lab: pd.DataFrame, cells: pd.DataFrame) -> plt.Figure:
    """Knowledge entropy below its maximum (H − L ln m, nats: comparable across widths; down is decay)
    against the share of the run, a panel per factor the design varies (the follow-up: two), a line per cell
    (mean over its trajectories) coloured by the factor's level; the verdicts of the rule in the last panel."""
    from ..analysis.lab_design import level_value
    from ..analysis.lab_tables import FACTOR_KEYS

    whole = _lab_whole(lab, "knowledge_entropy_gap").assign(below=lambda t: -t.value)
    means = whole.groupby(["model", "fraction", *FACTOR_KEYS], as_index=False).below.mean()
    varied = {factor: key for factor, key in FACTOR_KEYS.items() if means[factor].nunique() > 1}
    columns = min(4, len(varied) + 1)
    rows = -(-(len(varied) + 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.5 * rows), squeeze=False, sharey=True)
    for ax, (factor, key) in zip(axes.flat, varied.items()):
        codes = sorted(means[factor].unique())  # coded levels (−1, 0, +1): a run's nominal level
        colours = dict(zip(codes, sns.color_palette("coolwarm", len(codes))))
        for (model, code), line in means.groupby(["model", factor]):
            ax.plot(line.fraction, line.below, color=colours[code], lw=1, marker="o", ms=2)
        for code, colour in colours.items():
            ax.plot([], [], color=colour, label=str(level_value(factor, code)))
        ax.legend(title=key, fontsize=7, title_fontsize=7)
        ax.set(title=f"{factor}: {key}", ylabel="H − L ln m (nats)")
        _fraction_axis(ax)
    verdicts = axes.flat[len(varied)]
    decided = whole.merge(cells[["model", "decision"]], on="model")
    palette = {"decays": "tab:blue", "falls, not significant": "tab:orange", "does not decay": "tab:grey"}
    for (model, decision), line in decided.groupby(["model", "decision"]):
        mean = line.groupby("fraction").below.mean()
        verdicts.plot(mean.index, mean.values, color=palette[decision], lw=1)
    for decision, colour in palette.items():
        verdicts.plot([], [], color=colour, label=f"{decision} ({int((cells.decision == decision).sum())} cells)")
    verdicts.legend(fontsize=7)
    verdicts.set(title="every cell by the rule's verdict", ylabel="H − L ln m (nats)")
    _fraction_axis(verdicts)
    for ax in axes.flat[len(varied) + 1 :]:
        ax.remove()
    per_cell = _lab_trajectories(whole)
    fig.suptitle(f"{cells.model.nunique()} cells × {per_cell} pretraining trajectories; a line: a cell's mean")
    fig.tight_layout()
    return fig


def lab_effects(effects: pd.DataFrame) -> plt.Figure:
    """Each factor's main effect (low → high) on the late and the early slope of knowledge entropy against
    ln(step), with its 95% interval (kentropy.analysis.lab_tables.main_effects)."""
    responses = [r for r in ("late_slope", "early_slope") if r in set(effects.response)]
    fig, axes = plt.subplots(1, len(responses), figsize=(5.5 * len(responses), 3.8), squeeze=False, sharey=True)
    for ax, response in zip(axes.flat, responses):
        rows = effects[effects.response == response].iloc[::-1]
        labels = [f"{r.factor} {r.key}\n{r.low} → {r.high}" for r in rows.itertuples()]
        y = np.arange(len(rows))
        ax.errorbar(rows.effect, y, xerr=[rows.effect - rows.ci_low, rows.ci_high - rows.effect], fmt="o", capsize=3)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(y, labels, fontsize=7)
        ax.set(title=f"effect on the {response.replace('_', ' ')}", xlabel="nats per e-fold of steps")
    n, dof = int(effects.trajectories.iloc[0]), int(effects.dof.iloc[0])
    fig.suptitle(f"main effects over {n} trajectories, 95% Student-t intervals on {dof} residual df")
    fig.tight_layout()
    return fig


def lab_layers(lab: pd.DataFrame, cells: pd.DataFrame) -> plt.Figure:
    """Each layer's gap to uniform memory use (ln m − H_l) against the share of the run, a panel per cell,
    a line per layer with its 95% interval over the cell's trajectories (does the last layer move most, as
    in the paper's Figure 8?)."""
    layers = lab[(lab.metric == "knowledge_entropy_gap") & lab.layer.notna() & (lab.step > 0)]
    layers = layers.assign(fraction=layers.step / layers.total_steps, layer=layers.layer.astype(int))
    models = sorted(layers.model.unique())
    columns = 4
    rows = -(-len(models) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    verdict = cells.set_index("model").decision
    for ax, model in zip(axes.flat, models):
        sns.lineplot(data=layers[layers.model == model], x="fraction", y="value", hue="layer", marker="o",
                     palette="viridis", errorbar=seed_interval, ax=ax)  # fmt: skip
        ax.set(title=f"{model}: {verdict[model]}", ylabel="ln m − H_l (nats)")
        _fraction_axis(ax)
        ax.xaxis.label.set_size(7)
        ax.legend(title="layer", fontsize=7, title_fontsize=7)
    for ax in axes.flat[len(models) :]:
        ax.remove()
    per_cell = _lab_trajectories(layers)
    fig.suptitle(f"per-layer gap; bands: 95% Student-t interval over each cell's {per_cell} trajectories")
    fig.tight_layout()
    return fig


def _lab_trajectories(table: pd.DataFrame) -> int:
    return int(table.groupby("model").trajectory.nunique().min())

"""The lab's tables (docs/lab.md): each cell's factor levels read back from its recipe, ``lab.parquet`` (every
entropy measure of every lab checkpoint beside its cell's levels), each trajectory's slopes with their bootstrap
interval, each cell's decision under the rule, and the factors' main effects on the slopes."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from ..core.plan import Pretraining, pretrain_recipe
from . import lab_design as lab

#: The factor codes in design order, and each one's config key (the column of its value in the lab's tables).
FACTORS = tuple(lab.LEVELS)
FACTOR_KEYS = {f: lab.LEVELS[f][0] for f in FACTORS}
#: A value is a factor's level when within this relative distance of it (a run's steps are rounded, so its
#: tokens per parameter sit near, not on, the level).
LEVEL_TOLERANCE = 0.01
#: Knowledge entropy from the per-document sums (one unpadded document at a time) and from the entropy pass
#: (padded batches) agree to float32 rounding; nats.
SUMS_TOLERANCE = 1e-4
#: The slopes the main effects are estimated for: the rule's late slope, and the early one beside it.
RESPONSES = ("late_slope", "early_slope")


class LabError(ValueError):
    """A lab config or table that the lab's analysis cannot read (a cell off the design's levels)."""


def coded(factor: str, value) -> int:
    """−1, +1 or 0: ``value`` as ``factor``'s low, high or follow-up third level (docs/lab.md's table)."""
    key, *levels = lab.LEVELS[factor]
    for code, level in zip((-1, 1, 0), levels):
        same = value == level if isinstance(level, str) else math.isclose(value, level, rel_tol=LEVEL_TOLERANCE)
        if same:
            return code
    raise LabError(f"{key} = {value!r} is none of the lab's levels {levels} (kentropy.analysis.lab_design.LEVELS)")


def cell_table(config: dict) -> pd.DataFrame:
    """One row per pretrained model of ``config`` (a lab cell): each factor's value under its config key and
    its code (columns A..G), the parameter count, the run's steps, tokens a step and Λ = lr · wd · T."""
    from ..training.pretrain import parameter_count

    rows, counted = [], {}  # a model's count, built on the meta device, once per shape
    for model, spec in config["models"].items():
        if spec["source"] != "pretrain":
            continue
        cfg = Pretraining.from_recipe(pretrain_recipe(config, model), seed=0)
        optimizer, schedule = cfg.optimizer, cfg.schedule
        shape = replace(cfg, optimizer=None, schedule=None)  # what the count depends on
        if shape not in counted:
            counted[shape] = parameter_count(shape)
        parameters = counted[shape]
        skew = spec["skew"]["person_zipf"] if "skew" in spec else config["world"]["person_zipf"]
        values = {"weight_decay": optimizer.weight_decay, "lr": optimizer.lr,
                  "intermediate_size": cfg.intermediate_size, "activation": cfg.activation, "skew": skew,
                  "alpha_f": schedule.alpha_f,
                  "tokens_per_parameter": schedule.total_steps * cfg.tokens_per_step / parameters}  # fmt: skip
        row = {"model": model, **{FACTOR_KEYS[f]: values[FACTOR_KEYS[f]] for f in FACTORS}}
        row.update({f: coded(f, values[FACTOR_KEYS[f]]) for f in FACTORS})
        timescales = lab.adamw_timescales(optimizer.lr, optimizer.weight_decay, schedule.total_steps)
        row.update(parameters=parameters, total_steps=schedule.total_steps, tokens_per_step=cfg.tokens_per_step,
                   timescales=timescales)  # fmt: skip
        rows.append(row)
    if not rows:
        raise LabError("the config pretrains no model: the lab's cells are `source: pretrain` models")
    return pd.DataFrame(rows)


def lab_table(entropy: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """``lab.parquet``: every entropy row of every lab checkpoint (original variant) with its cell's factor
    values and codes, and the checkpoint's tokens per parameter and Λ so far (peak lr · wd · step)."""
    table = entropy[entropy.variant == "original"].merge(cells, on="model", how="inner", validate="many_to_one")
    table["checkpoint_tokens_per_parameter"] = table.step * table.tokens_per_step / table.parameters
    table["checkpoint_timescales"] = table.lr * table.weight_decay * table.step
    first = ["model", "trajectory", "step", *FACTOR_KEYS.values(), *FACTORS, "checkpoint_tokens_per_parameter",
             "checkpoint_timescales", "metric", "layer", "value"]  # fmt: skip
    return table[first + [c for c in table.columns if c not in first]].reset_index(drop=True)


def trajectory_slopes(model: str, trajectory: int, steps, sums: np.ndarray, total_steps: int) -> dict:
    """One row of ``lab_slopes.parquet``: the trajectory's slopes (docs/lab.md, rules 1-2) and its knowledge
    entropy at step 0 and at T, all from its per-document sums (steps, documents, layers, m)."""
    slope = lab.trajectory_slope(steps, sums, total_steps)
    h = lab.knowledge_entropy_from_documents(sums)
    steps = list(steps)
    return {"model": model, "trajectory": trajectory, "late_slope": slope.late, "late_low": slope.low,
            "late_high": slope.high, "early_slope": slope.early, "late_from": slope.late_from,
            "initial_entropy": float(h[steps.index(0)]) if 0 in steps else math.nan,
            "final_entropy": float(h[steps.index(total_steps)]), "documents": sums.shape[1],
            "resamples": lab.RESAMPLES}  # fmt: skip


def cell_decisions(slopes: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """``lab_cells.parquet``: each cell's verdict under the rule, with the numbers it rests on (mean late and
    early slopes over seeds, the late drop, the seed-to-seed SD of H at T, the seeds)."""
    rows = []
    for model, group in slopes.groupby("model", sort=True):
        total = int(cells.set_index("model").total_steps[model])
        found = [lab.Slope(r.late_slope, r.late_low, r.late_high, r.early_slope, int(r.late_from))
                 for r in group.itertuples()]  # fmt: skip
        mean_late = float(group.late_slope.mean())
        rows.append({"model": model, "decision": lab.decides(found, list(group.final_entropy), total),
                     "late_slope": mean_late, "early_slope": float(group.early_slope.mean()),
                     "late_drop": -mean_late * math.log(total / found[0].late_from),
                     "final_sd": float(group.final_entropy.std(ddof=1)) if len(group) > 1 else math.nan,
                     "initial_entropy": float(group.initial_entropy.mean()),
                     "final_entropy": float(group.final_entropy.mean()),
                     "seeds_falling": int((group.late_slope < 0).sum()),
                     "seeds_significant": int((group.late_high < 0).sum()), "seeds": len(group)})  # fmt: skip
    decisions = pd.DataFrame(rows)
    return cells.merge(decisions, on="model", validate="one_to_one")


def main_effects(slopes: pd.DataFrame, cells: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """``lab_effects.parquet``: each varied factor's main effect on each response (``RESPONSES``), by least
    squares on the coded factors over every trajectory (docs/lab.md): twice its coefficient, the change from
    its low to its high level, with the Student-t interval on the residual degrees of freedom."""
    from scipy import stats

    data = slopes.merge(cells, on="model", validate="many_to_one")
    varied = [f for f in FACTORS if data[f].nunique() > 1]
    x = np.column_stack([np.ones(len(data)), *(data[f].to_numpy(float) for f in varied)])
    dof = len(data) - x.shape[1]
    if dof < 1:
        raise LabError(f"{len(data)} trajectories cannot estimate {len(varied)} main effects and an intercept")
    inverse = np.linalg.inv(x.T @ x)
    rows = []
    for response in RESPONSES:
        y = data[response].to_numpy(float)
        keep = ~np.isnan(y)
        if not keep.all():  # an early window with fewer than 2 checkpoints has no slope
            continue
        coef = inverse @ x.T @ y
        residual = y - x @ coef
        sigma2 = residual @ residual / dof
        half = stats.t.ppf(0.5 + level / 2, dof)
        for i, factor in enumerate(varied, start=1):
            se = math.sqrt(sigma2 * inverse[i, i])
            t = coef[i] / se if se > 0 else math.inf
            rows.append({"response": response, "factor": factor, "key": FACTOR_KEYS[factor],
                         "low": str(lab.LEVELS[factor][1]), "high": str(lab.LEVELS[factor][2]),
                         "effect": 2 * coef[i], "ci_low": 2 * (coef[i] - half * se),
                         "ci_high": 2 * (coef[i] + half * se), "t": t,
                         "p_value": float(2 * stats.t.sf(abs(t), dof)), "dof": dof,
                         "trajectories": len(data), "cells": int(data.model.nunique())})  # fmt: skip
    return pd.DataFrame(rows)


def cpu_model() -> str:
    """This machine's CPU model (``/proc/cpuinfo``'s model name, as ``lscpu`` prints it), for the tables'
    note: every time and number names the machine type it came from."""
    import platform
    from pathlib import Path

    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _number(value: float, digits: int = 4) -> str:
    return f"{value:+.{digits}f}"


def effects_markdown(effects: pd.DataFrame, decisions: pd.DataFrame, cpu: str) -> str:
    """``lab_effects.md``: the main-effects table and every cell's verdict, with what each number rests on."""
    late = effects[effects.response == "late_slope"].set_index("factor")
    early = effects[effects.response == "early_slope"].set_index("factor")
    n, dof = int(late.trajectories.iloc[0]), int(late.dof.iloc[0])
    third_level = bool((decisions[list(late.index)] == 0).any(axis=None))
    residual = (
        "the interaction of the factors and their curvature over three levels; an effect is the linear trend"
        if third_level
        else "every interaction the design aliases with a main effect's three-factor words"
    )
    lines = [
        f"Main effects on the slope of knowledge entropy against ln(step) (nats per e-fold of steps), low → high "
        f"level; least squares on the coded factors over {n} trajectories ({late.cells.iloc[0]} cells), "
        f"95% Student-t intervals on {dof} residual degrees of freedom (the residual carries the seed-to-seed "
        f"variation and {residual}). {cpu}.",
        "",
        "| factor | low → high | effect on late slope [95% CI] | p | effect on early slope [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for factor, row in late.iterrows():
        e = early.loc[factor] if factor in early.index else None
        early_cell = f"{_number(e.effect)} [{_number(e.ci_low)}, {_number(e.ci_high)}]" if e is not None else "–"
        late_cell = f"{_number(row.effect)} [{_number(row.ci_low)}, {_number(row.ci_high)}]"
        levels = f"{row.low} → {row.high}"
        lines.append(f"| {factor} {row.key} | {levels} | {late_cell} | {row.p_value:.2g} | {early_cell} |")
    lines += [
        "",
        "Every cell (mean over its seeds; H in nats; Λ = lr · wd · T; a verdict of docs/lab.md's rule):",
        "",
        "| cell | wd | lr | tokens/param | m | activation | skew | alpha_f | Λ | H(0) | H(T) | early slope "
        "| late slope | late drop | SD of H(T) | late < 0, CI < 0 (of seeds) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in decisions.itertuples():
        lines.append(
            f"| {r.model} | {r.weight_decay:g} | {r.lr:g} | {r.tokens_per_parameter:.0f} | {r.intermediate_size} "
            f"| {r.activation} | {r.skew:g} | {r.alpha_f:g} | {r.timescales:.1f} | {r.initial_entropy:.3f} "
            f"| {r.final_entropy:.3f} | {_number(r.early_slope)} | {_number(r.late_slope)} | {_number(r.late_drop)} "
            f"| {r.final_sd:.4f} | {r.seeds_falling}, {r.seeds_significant} of {r.seeds} | {r.decision} |"
        )
    return "\n".join(lines) + "\n"


#: The contrast's quantities (kentropy.analysis.continual_tables.totals): acquisition and forgetting, in percent.
CONTRAST_QUANTITIES = {"A": "acquisition (%)", "F": "forgetting (%)"}


def contrast_table(totals: pd.DataFrame, decaying: str, twin: str, level: float = 0.95) -> pd.DataFrame:
    """The continual contrast of docs/lab.md from the runs' ``totals`` (original checkpoints): for each
    quantity, at each position k of the cells' continued checkpoints (their steps differ when their lengths
    do: position k is the same share of each schedule) and pooled over positions (each trajectory's mean), both
    cells' means over trajectories and the difference decaying − twin with its Welch interval."""
    from scipy import stats

    runs = totals[totals.variant == "original"]
    per_trajectory = runs.groupby(["model", "trajectory", "step"], as_index=False)[list(CONTRAST_QUANTITIES)].mean()
    cells = {}
    for cell in (decaying, twin):
        sub = per_trajectory[per_trajectory.model == cell]
        if sub.empty:
            raise LabError(f"the contrast's cell {cell} has no continual runs in the table")
        steps = sorted(sub.step.unique())
        cells[cell] = sub.assign(position=sub.step.map({s: i + 1 for i, s in enumerate(steps)}))
    if cells[decaying].position.max() != cells[twin].position.max():
        raise LabError(f"{decaying} and {twin} continue from different numbers of checkpoints")
    rows = []
    for quantity in CONTRAST_QUANTITIES:
        positions = sorted(cells[decaying].position.unique())
        for position in [*positions, "all"]:
            groups, steps = {}, {}
            for cell, table in cells.items():
                at = table if position == "all" else table[table.position == position]
                groups[cell] = at.groupby("trajectory")[quantity].mean().to_numpy()
                steps[cell] = "all" if position == "all" else str(int(at.step.iloc[0]))
            x, y = groups[decaying], groups[twin]
            test = stats.ttest_ind(x, y, equal_var=False)
            low, high = test.confidence_interval(level)
            rows.append({"quantity": quantity, "position": str(position), "step_decaying": steps[decaying],
                         "step_twin": steps[twin], "decaying": x.mean(), "twin": y.mean(),
                         "difference": x.mean() - y.mean(), "ci_low": low, "ci_high": high, "p_value": test.pvalue,
                         "trajectories_decaying": len(x), "trajectories_twin": len(y)})  # fmt: skip
    return pd.DataFrame(rows).assign(decaying_cell=decaying, twin_cell=twin)


def contrast_markdown(table: pd.DataFrame, cpu: str) -> str:
    """``lab_contrast.md``: the contrast table with what its numbers rest on."""
    decaying, twin = table.decaying_cell.iloc[0], table.twin_cell.iloc[0]
    n, m = int(table.trajectories_decaying.max()), int(table.trajectories_twin.max())
    lines = [
        f"The continual contrast (docs/lab.md): {decaying} (knowledge entropy decays) against {twin} (differs in the "
        f"activation alone; does not decay), {n} and {m} pretraining trajectories × 1 continual seed each, the "
        "baseline run. Position k: the k-th of each cell's last checkpoints (the same share of its schedule); all: "
        f"each trajectory's mean over them. Difference {decaying} − {twin}, 95% Welch interval. {cpu}.",
        "",
        f"| quantity | position | step {decaying} | step {twin} | {decaying} | {twin} | difference [95% CI] | p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {CONTRAST_QUANTITIES[r.quantity]} | {r.position} | {r.step_decaying} | {r.step_twin} "
            f"| {r.decaying:.2f} | {r.twin:.2f} | {r.difference:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}] "
            f"| {r.p_value:.2g} |"
        )
    return "\n".join(lines) + "\n"


def pretraining_seconds(benchmarks: dict[str, list[str]], cells: pd.DataFrame) -> dict[str, float]:
    """Each cell's pretraining cost for the default criterion (kentropy.analysis.lab_design.default_cell): the mean
    over its trajectories of their ``pretrain_tiny`` job-seconds (Snakemake's benchmark files, ``s`` column; every
    segment of the trajectory), times ``lab.DEFAULT_TRAJECTORIES``. ``benchmarks``: trajectory → its files."""
    from ..core.layout import parse_trajectory_name

    per_trajectory: dict[str, list[float]] = {}
    for trajectory, files in benchmarks.items():
        model, _ = parse_trajectory_name(trajectory, 0)
        per_trajectory.setdefault(model, []).append(sum(float(pd.read_csv(f, sep="\t").s.iloc[0]) for f in files))
    missing = sorted(set(cells.model) - set(per_trajectory))
    if missing:
        raise LabError(f"no pretraining benchmarks for the cells {', '.join(missing)}")
    return {m: float(np.mean(v)) * lab.DEFAULT_TRAJECTORIES for m, v in per_trajectory.items()}

"""The lab's design and decision rule (docs/lab.md) as functions: the fractional factorial screen and its
aliasing, each cell's derived numbers (parameters, steps, checkpoint steps, Λ), the config that pretrains its
cells (``python -m kentropy.analysis.lab_design > config/lab.yaml``), and the rule that says whether a cell's knowledge
entropy decays. The rule's inputs are per-document sums, so its bootstrap resamples documents exactly as
docs/lab.md states."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..core.plan import Pretraining

#: The screen's base factors (all 16 combinations) and generated factors (docs/lab.md): E = ABC, F = BCD,
#: G = ACD, a 2^(7-3) design of resolution IV.
BASE = ("A", "B", "C", "D")
GENERATORS = {"E": "ABC", "F": "BCD", "G": "ACD"}
#: Each factor's config key and levels (low, high, follow-up third level), docs/lab.md's table. ``tokens_per_parameter``
#: sets the cell's total_steps; ``skew`` sets person_zipf = object_zipf.
LEVELS = {
    "A": ("weight_decay", 0.0, 1.6, 0.4),
    "B": ("lr", 1e-3, 4e-3, 2e-3),
    "C": ("tokens_per_parameter", 20, 200, 60),
    "D": ("intermediate_size", 128, 256, 192),
    "E": ("activation", "swiglu", "gelu", "reglu"),
    "F": ("skew", 0.0, 1.5, 1.0),
    "G": ("alpha_f", 0.1, 1.0, 0.5),
}
#: What every cell shares (docs/lab.md, "Models, data and measurement").
SHARED = {"tokenizer_vocab_size": 512, "hidden_size": 32, "num_layers": 2, "num_heads": 4, "seq_len": 128,
          "batch_size": 16, "warmup_fraction": 0.05}  # fmt: skip
SEEDS = [0, 1]
#: The follow-up (docs/lab.md): the screen's two strongest factors at three levels, on these seeds, every other
#: factor at the level nearest OLMo's recipe (coded: −1 low, 0 the third level, +1 high).
FOLLOW_UP_SEEDS = [0, 1, 2]
FOLLOW_UP_BASE = {"A": 0, "B": 0, "C": 1, "D": -1, "E": -1, "F": 0, "G": -1}
#: Held-out world documents the lab measures on: at least 30,000 tokens (a world document averages about 33 tokens
#: of the lab's 512-token vocabulary: 1,024 hold about 33,400; the screen's first run had 512, 16,722 tokens).
ENTROPY_DOCUMENTS = 1024
#: The late window starts at this share of a run's steps (the paper's OLMo is stable from about 15%).
LATE_FROM = 0.15
#: Bootstrap resamples of the evaluation documents, and their seed.
RESAMPLES = 1000
BOOTSTRAP_SEED = 0
#: A decaying cell's late drop is at least this many seed-to-seed SDs.
DROP_OVER_SD = 3.0


def fractional_design(base=BASE, generators=None) -> list[dict[str, int]]:
    """The design's runs in standard order (the first base factor alternating fastest): each a {factor: ±1}
    with every generated factor the product of its word's base levels."""
    generators = GENERATORS if generators is None else generators
    runs = []
    for levels in itertools.product((-1, 1), repeat=len(base)):
        run = dict(zip(base, reversed(levels)))
        run.update({g: math.prod(run[f] for f in word) for g, word in generators.items()})
        runs.append(run)
    return runs


def _product(*words: str) -> str:
    """The product of effect words: letters that appear an odd number of times, sorted (A·A = I)."""
    letters = "".join(words)
    return "".join(sorted(c for c in set(letters) if letters.count(c) % 2))


def defining_relation(generators=None) -> list[str]:
    """Every word equal to I: the products of the generators' defining words (g·word), shortest first."""
    generators = GENERATORS if generators is None else generators
    words = [_product(g, w) for g, w in generators.items()]
    found = set()
    for r in range(1, len(words) + 1):
        for combo in itertools.combinations(words, r):
            found.add(_product(*combo))
    return sorted(found, key=lambda w: (len(w), w))


def resolution(generators=None) -> int:
    """The length of the shortest word of the defining relation."""
    return len(defining_relation(generators)[0])


def aliases(effect: str, generators=None) -> list[str]:
    """The effects aliased with ``effect`` (its products with every word of the defining relation)."""
    return sorted({_product(effect, w) for w in defining_relation(generators)}, key=lambda w: (len(w), w))


def log_steps(total_steps: int, points: int = 11) -> list[int]:
    """The checkpoint steps of a run of ``total_steps``: 0 (the initialisation) and round(T · 10^(−2 + 2k/10)),
    k = 0..points−1, from 1% of T to T, duplicates after rounding dropped."""
    steps = {0} | {max(1, round(total_steps * 10 ** (-2 + 2 * k / (points - 1)))) for k in range(points)}
    return sorted(steps)


def adamw_timescales(lr: float, weight_decay: float, total_steps: int) -> float:
    """Λ = lr · weight decay · steps: how many AdamW averaging timescales (1 / (lr · wd) steps each, Wang &
    Aitchison 2024) a run spans."""
    return lr * weight_decay * total_steps


def steps_for(tokens_per_parameter: float, parameters: int, tokens_per_step: int) -> int:
    """The steps that give a model of ``parameters`` weights ``tokens_per_parameter`` training tokens each."""
    return max(1, round(tokens_per_parameter * parameters / tokens_per_step))


def least_squares_slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The OLS slope of y on x along the last axis of y (y: (..., points))."""
    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean()
    return (np.asarray(y, dtype=np.float64) @ xc) / (xc @ xc)


def windows(steps, total_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over ``steps`` of the early (0 < s < 0.15 T) and late (s ≥ 0.15 T) windows."""
    s = np.asarray(steps)
    late = s >= LATE_FROM * total_steps
    return (s > 0) & ~late, late


def knowledge_entropy_from_documents(document_sums: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Knowledge entropy (nats) from per-document |coefficient| sums (..., documents, layers, m), summed over
    the documents with ``weights`` (counts of each document in a resample; default 1 each): per layer the
    entropy of the normalised summed vector, summed over layers."""
    sums = np.asarray(document_sums, dtype=np.float64)
    w = np.ones(sums.shape[-3]) if weights is None else np.asarray(weights, dtype=np.float64)
    total = np.einsum("d,...dlm->...lm", w, sums)
    p = total / total.sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(-1).sum(-1)


@dataclass(frozen=True)
class Slope:
    """One trajectory's late (and early) slope of knowledge entropy against ln(step), with the late slope's
    bootstrap interval over evaluation documents."""

    late: float
    low: float
    high: float
    early: float
    late_from: int  #: the first late checkpoint's step (s_w)


def trajectory_slope(steps, document_sums: np.ndarray, total_steps: int, resamples: int = RESAMPLES) -> Slope:
    """``document_sums``: (checkpoints, documents, layers, m), the per-document |coefficient| sums at each of
    ``steps`` (step 0 included, not fitted). The bootstrap draws the documents with replacement once per
    resample and recomputes every checkpoint's knowledge entropy from them (docs/lab.md, rule 2)."""
    steps = np.asarray(steps)
    early, late = windows(steps, total_steps)
    h = knowledge_entropy_from_documents(document_sums)
    slope = float(least_squares_slope(np.log(steps[late]), h[late]))
    early_slope = float(least_squares_slope(np.log(steps[early]), h[early])) if early.sum() >= 2 else math.nan
    n_docs = document_sums.shape[1]
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    fitted = document_sums[late]
    draws = np.empty(resamples)
    for b in range(resamples):
        counts = np.bincount(rng.integers(0, n_docs, n_docs), minlength=n_docs)
        draws[b] = least_squares_slope(np.log(steps[late]), knowledge_entropy_from_documents(fitted, counts))
    low, high = np.percentile(draws, [2.5, 97.5])
    return Slope(slope, float(low), float(high), early_slope, int(steps[late][0]))


def decides(slopes: list[Slope], final_entropies: list[float], total_steps: int) -> str:
    """The rule of docs/lab.md for one cell from its seeds: "decays" (every seed's late slope below 0 with its
    interval's upper end below 0, and the late drop −mean(b) · ln(T / s_w) at least 3 seed-to-seed SDs of
    the final knowledge entropy), "falls, not significant" (every late slope below 0, the rest not met), or
    "does not decay"."""
    if not all(s.late < 0 for s in slopes):
        return "does not decay"
    drop = -np.mean([s.late for s in slopes]) * math.log(total_steps / slopes[0].late_from)
    sd = float(np.std(final_entropies, ddof=1)) if len(final_entropies) > 1 else math.inf
    if all(s.high < 0 for s in slopes) and drop >= DROP_OVER_SD * sd:
        return "decays"
    return "falls, not significant"


def follow_up_design(factors: tuple[str, str]) -> list[dict[str, int]]:
    """The follow-up's cells: ``factors`` at every pair of their three levels (the first varying fastest),
    every other factor at ``FOLLOW_UP_BASE``."""
    first, second = factors
    if first == second or {first, second} - set(LEVELS):
        raise ValueError(f"the follow-up needs two different factors of {', '.join(LEVELS)}, not {factors}")
    return [{**FOLLOW_UP_BASE, first: a, second: b} for b in (-1, 0, 1) for a in (-1, 0, 1)]


def strongest_factors(effects) -> tuple[str, str]:
    """The follow-up's two factors (docs/lab.md): the largest |t| of the main effect on the late slope, from
    ``lab_effects.parquet`` (kentropy.analysis.lab_tables.main_effects); ties go to the earlier letter."""
    late = effects[effects.response == "late_slope"]
    ranked = late.assign(size=late.t.abs()).sort_values(["size", "factor"], ascending=[False, True])
    first, second = ranked.factor.iloc[:2]
    return first, second


#: The continual contrast (docs/lab.md): its cells continue training from this many of their last checkpoints.
CONTRAST_STEPS = 5
#: The contrast's twins, in the order the rule tries them: (the decaying cell's activation, its twin's).
CONTRAST_ORDER = (("gelu", "swiglu"), ("gelu", "reglu"), ("reglu", "swiglu"), ("swiglu", "reglu"),
                  ("reglu", "gelu"), ("swiglu", "gelu"))  # fmt: skip


def contrast_pair(cells) -> tuple[str, str] | None:
    """(decaying cell, its twin) by the rule of docs/lab.md, from the follow-up's ``lab_cells.parquet``: cells
    at the same tokens per parameter that differ in the activation alone, the first decaying and the second
    not, in ``CONTRAST_ORDER``, at the highest tokens-per-parameter level that has one; None if no pair."""
    decays = dict(zip(cells.model, cells.decision == "decays"))
    by_level = cells.assign(level=cells.C).sort_values("level", ascending=False)
    for _, level in by_level.groupby("level", sort=False):
        cell_of = dict(zip(level.activation, level.model))
        for decaying, twin in CONTRAST_ORDER:
            if decaying in cell_of and twin in cell_of and decays[cell_of[decaying]] and not decays[cell_of[twin]]:
                return cell_of[decaying], cell_of[twin]
    return None


def with_contrast(config: dict, pair: tuple[str, str]) -> dict:
    """``config`` (the follow-up's) with the continual contrast: the pair's models continue training from their
    last ``CONTRAST_STEPS`` checkpoints in the ``baseline`` run alone, no other model continues."""
    continual = {**config["continual"], "steps": []}
    continual["runs"] = {continual["baseline"]: continual["runs"][continual["baseline"]]}
    models = {name: dict(spec) for name, spec in config["models"].items()}
    for name in pair:
        models[name]["continual_steps"] = sorted(models[name]["steps"])[-CONTRAST_STEPS:]
    return {**config, "continual": continual, "models": models}


#: OLMo-1B's recipe in the default criterion's coordinates (docs/lab.md): AdamW timescales and tokens per parameter.
OLMO_TIMESCALES = 30.0
OLMO_TOKENS_PER_PARAMETER = 2600.0
#: The default config pretrains this many trajectories; a cell's cost is that many of its trajectories.
DEFAULT_TRAJECTORIES = 3


def default_cell(cells, seconds: dict[str, float], budget: float) -> str | None:
    """The cell the default config pretrains with, by the criterion of docs/lab.md: of the cells that decay
    (``lab_cells.parquet``'s verdicts) and whose ``DEFAULT_TRAJECTORIES`` trajectories pretrain within
    ``budget`` job-seconds (``seconds``: each cell's, measured on the machine type of the budget), the nearest
    to OLMo's recipe in (ln Λ, ln tokens per parameter), Euclidean (Λ = 0 is infinitely far); ties go to the
    cheaper cell. None when no decaying cell fits."""
    fits = cells[(cells.decision == "decays") & (cells.model.map(seconds) <= budget)]
    if fits.empty:
        return None
    with np.errstate(divide="ignore"):
        distance = np.hypot(
            np.log(OLMO_TIMESCALES / fits.timescales.to_numpy(float)),
            np.log(OLMO_TOKENS_PER_PARAMETER / fits.tokens_per_parameter.to_numpy(float)),
        )
    ranked = fits.assign(distance=distance, seconds=fits.model.map(seconds)).sort_values(["distance", "seconds"])
    return str(ranked.model.iloc[0])


def cell_name(index: int, prefix: str = "c") -> str:
    """The model name of the design's run ``index`` (0-based, standard order): c01 … c16 (follow-up: f01 …)."""
    return f"{prefix}{index + 1:02d}"


def level_value(factor: str, code: int):
    """The value of ``factor`` at ``code`` (−1 low, +1 high, 0 the follow-up's third level)."""
    return LEVELS[factor][{-1: 1, 1: 2, 0: 3}[code]]


def cell_recipe(levels: dict[str, int]) -> tuple[dict, dict, int]:
    """(the cell's ``models.<m>.pretrain`` keys, its ``skew``, its parameter count) from its ±1 levels."""
    from ..training.pretrain import parameter_count

    chosen = {LEVELS[f][0]: level_value(f, code) for f, code in levels.items()}
    recipe = {k: chosen[k] for k in ("weight_decay", "lr", "intermediate_size", "activation", "alpha_f")}
    parameters = parameter_count(Pretraining.from_recipe({**SHARED, **recipe, "total_steps": 1}, seed=0))
    tokens_per_step = SHARED["batch_size"] * SHARED["seq_len"]
    recipe["total_steps"] = steps_for(chosen["tokens_per_parameter"], parameters, tokens_per_step)
    skew = {"person_zipf": chosen["skew"], "object_zipf": chosen["skew"]}
    return recipe, skew, parameters


def lab_config(default: dict, follow_up: tuple[str, str] | None = None) -> dict:
    """config/lab.yaml: the screen's 16 cells as pretrained models of experiment ``lab`` (seeds ``SEEDS``),
    each measured at ``log_steps`` of its own length; the world, the continual, probe, downstream and figure
    sections are the default config's (the lab's targets are its entropy tables). With ``follow_up`` (two
    factors): the follow-up's 9 cells, experiment ``lab-followup``, seeds ``FOLLOW_UP_SEEDS``."""
    design = fractional_design() if follow_up is None else follow_up_design(follow_up)
    models = {}
    for index, levels in enumerate(design):
        recipe, skew, _ = cell_recipe(levels)
        models[cell_name(index, "c" if follow_up is None else "f")] = {
            "source": "pretrain",
            "steps": log_steps(recipe["total_steps"]),
            "skew": skew,
            "pretrain": recipe,
        }
    pretrain = {**SHARED, "lr": LEVELS["B"][1], "weight_decay": LEVELS["A"][1], "alpha_f": LEVELS["G"][1],
                "total_steps": max(m["pretrain"]["total_steps"] for m in models.values()),
                "intermediate_size": LEVELS["D"][1], "activation": LEVELS["E"][1],
                "seeds": SEEDS if follow_up is None else FOLLOW_UP_SEEDS}  # fmt: skip
    world = {**default["world"], "n_entropy_documents": ENTROPY_DOCUMENTS}
    entropy = {**default["entropy"], "corpus": {**default["entropy"]["corpus"], "count": ENTROPY_DOCUMENTS}}
    sections = ("threads", "continual", "probe", "downstream", "figures")
    experiment, lab = ("lab", {"design": "screen"}) if follow_up is None else ("lab-followup", {"design": "follow_up"})
    return {"experiment": experiment, "seed": 0, **{k: default[k] for k in sections if k in default},
            "world": world, "pretrain": pretrain, "models": models, "entropy": entropy, "lab": lab}  # fmt: skip


def lab_yaml(default: dict, follow_up: tuple[str, str] | None = None, contrast: tuple[str, str] | None = None) -> str:
    """``lab_config`` as the committed file: a header that says where it comes from, then the YAML; the
    follow-up's with the continual contrast of ``contrast`` (``with_contrast``) when given."""
    import yaml

    if follow_up is None:
        header = (
            "# The lab's screen (docs/lab.md): written by `python -m kentropy.analysis.lab_design >\n"
            "# config/lab.yaml`; edit kentropy/analysis/lab_design.py, not this file. Cells c01..c16 are the\n"
            "# 2^(7-3) design in standard order (E = ABC, F = BCD, G = ACD).\n"
            "# Run: snakemake lab --configfile config/lab.yaml\n"
        )
    else:
        header = (
            "# The lab's follow-up (docs/lab.md): written by `python -m kentropy.analysis.lab_design --follow-up-from\n"
            "# results/lab/tables/lab_effects.parquet > config/lab-followup.yaml` (the screen's two factors with\n"
            f"# the largest |t| on the late slope: {follow_up[0]} and {follow_up[1]}); edit\n"
            "# kentropy/analysis/lab_design.py, not this file. Cells f01..f09: the two at three levels, the first\n"
            "# varying fastest.\n"
            "# Run: snakemake lab --configfile config/lab-followup.yaml\n"
        )
    config = lab_config(default, follow_up)
    if contrast:
        config = with_contrast(config, contrast)
        header += (
            f"# The continual contrast (docs/lab.md): {contrast[0]} (decays) against {contrast[1]}, by the rule, from\n"
            "# `--contrast-from results/lab-followup/tables/lab_cells.parquet`.\n"
            "# Run: snakemake continual lab_contrast --configfile config/lab-followup.yaml\n"
        )
    return header + yaml.safe_dump(config, sort_keys=False)


def main(argv: list[str] | None = None) -> None:
    """Write config/lab.yaml (the screen) to stdout; with ``--follow-up-from`` the screen's effects table,
    the follow-up's config on the two factors the rule picks (``strongest_factors``)."""
    import argparse
    import sys

    from ..core.config import load_config_file

    parser = argparse.ArgumentParser(prog="python -m kentropy.analysis.lab_design", description=main.__doc__)
    parser.add_argument("--follow-up-from", metavar="LAB_EFFECTS_PARQUET", help="the screen's lab_effects.parquet")
    parser.add_argument("--contrast-from", metavar="LAB_CELLS_PARQUET", help="the follow-up's lab_cells.parquet")
    args = parser.parse_args(argv)
    if args.contrast_from and not args.follow_up_from:
        parser.error("--contrast-from extends the follow-up's config: give --follow-up-from too")
    follow_up = contrast = None
    if args.follow_up_from:
        import pandas as pd

        follow_up = strongest_factors(pd.read_parquet(args.follow_up_from))
        if args.contrast_from:
            contrast = contrast_pair(pd.read_parquet(args.contrast_from))
            if contrast is None:
                parser.error(f"{args.contrast_from}: no decaying cell has a non-decaying twin (docs/lab.md)")
    default = load_config_file(__file__.replace("src/kentropy/analysis/lab_design.py", "config/config.yaml"))
    sys.stdout.write(lab_yaml(default, follow_up, contrast))


if __name__ == "__main__":
    main()

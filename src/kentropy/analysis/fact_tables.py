"""The tables of the knowledge-frequency measurements (kentropy.measurement.qa, kentropy.analysis.smi,
kentropy.measurement.specialization, kentropy.measurement.exposure) across checkpoints, and what the correlations take
from them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..sources.facts_file import CORPUS_TEMPLATES, COUNT_SOURCES, counts_of
from . import smi as smi_lib
from .forgetting import decay_fit
from .outcomes import mean_interval

#: Key columns of a checkpoint's rows.
CHECKPOINT_KEYS = ["model", "trajectory", "step"]
#: The checkpoint quantities correlated with every entropy metric across steps (``checkpoint_outcomes``), and
#: the ``run`` label of their rows in the correlations: no continual run.
OUTCOMES = ("qa_accuracy", "smi_r2", "smi_upper_bound", "pss", "pss_masking")
PRETRAINING = "pretraining"


def qa_table(answers: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint, fact and template kind (``answers``: kentropy.measurement.qa's rows of every checkpoint, with its
    parameter count): ``accuracy`` (share of templates answered correctly), the share of greedy matches, the
    mean object log-probability and the number of templates."""
    keys = [*CHECKPOINT_KEYS, "parameters", "fact", "subject", "relation", "object", "templates"]
    table = answers.groupby(keys, sort=True).agg(
        accuracy=("correct", "mean"),
        match=("match", "mean"),
        logprob=("logprob", "mean"),
        n_templates=("template", "size"),
    )
    return table.reset_index().astype({"accuracy": np.float64, "match": np.float64})


def smi_tables(qa: pd.DataFrame, facts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SMI's fit per checkpoint, count source (exact, or substring search when the facts file has it), template
    kind and definition of P, and the bins it was fitted on. Empty when the facts file has no counts."""
    fits, bins = [], []
    for counts_source in COUNT_SOURCES:
        counts = counts_of(facts, counts_source)
        if counts is None:
            continue
        mi = smi_lib.mutual_information(counts)
        for key, group in qa.groupby([*CHECKPOINT_KEYS, "templates"], sort=True):
            accuracy = group.set_index("fact").accuracy.reindex(range(len(facts))).to_numpy()
            keep = (mi > 0) & ~np.isnan(accuracy)
            for size in smi_lib.SIZES:
                x = smi_lib.smi(mi[keep], int(group.parameters.iloc[0]), size)
                labels = {**dict(zip([*CHECKPOINT_KEYS, "templates"], key)), "counts": counts_source, "size": size}
                fits.append({**labels, **smi_lib.fit(x, accuracy[keep])})
                bins.append(smi_lib.bins(x, accuracy[keep]).assign(**labels))
    labels = [*CHECKPOINT_KEYS, "templates", "counts", "size"]
    fit_table = pd.DataFrame(fits, columns=[*labels, *smi_lib.FIT_COLUMNS])
    bin_table = pd.concat(bins, ignore_index=True) if bins else pd.DataFrame(columns=smi_lib.BIN_COLUMNS)
    return fit_table, bin_table.reindex(columns=[*labels, *smi_lib.BIN_COLUMNS])


def pretraining_acquisition(qa: pd.DataFrame, exposure: pd.DataFrame) -> pd.DataFrame:
    """Per fact and checkpoint (corpus templates): the object log-probability and accuracy beside the fact's
    exposures so far and the steps since its last one (``since``; NaN before the first)."""
    corpus = qa[qa.templates == CORPUS_TEMPLATES]
    table = corpus.merge(exposure, on=[*CHECKPOINT_KEYS, "fact", "subject", "relation", "object"], how="inner")
    table = table.assign(since=table.step - table.last_exposure)
    return table[[*CHECKPOINT_KEYS, "fact", "subject", "relation", "exposures", "since", "statements", "logprob",
                  "accuracy"]]  # fmt: skip


#: Columns of ``acquisition_fits`` after the model and trajectory.
ACQUISITION_FIT_COLUMNS = ["x", "exponent", "se", "intercept", "r2", "items", "points", "t_min", "t_max"]


def acquisition_fits(table: pd.DataFrame) -> pd.DataFrame:
    """Per trajectory, the forgetting curves' fit (kentropy.analysis.forgetting.decay_fit: logprob = c_fact - a ln x,
    one intercept per fact, a shared slope) with x = steps since the last exposure (a > 0: forgetting
    between exposures) and x = exposures so far (a < 0: gain per exposure), over the checkpoints where x >= 1."""
    rows = []
    for (model, trajectory), group in table.groupby(["model", "trajectory"], sort=True):
        for x in ("since", "exposures"):
            seen = group[group[x] >= 1]
            fitted = decay_fit(seen[x], seen.logprob, seen.fact)
            rows.append({"model": model, "trajectory": trajectory, "x": x, **fitted})
    return pd.DataFrame(rows, columns=["model", "trajectory", *ACQUISITION_FIT_COLUMNS])


def checkpoint_outcomes(
    qa: pd.DataFrame, smi: pd.DataFrame, specialization: pd.DataFrame, size: str, seed: int
) -> pd.DataFrame:
    """Long (model, trajectory, step, run ``PRETRAINING``, seed, metric, value; ``seed`` the global one) of
    ``OUTCOMES``, the rows ``metrics.correlations`` takes as ``checkpoints``: mean QA accuracy over facts (corpus
    templates), SMI's R² and upper bound (exact counts, corpus templates, P by ``size``), PSS and what masking adds
    to it (person view)."""
    accuracy, r2, upper_bound, pss, masking = OUTCOMES
    corpus = qa[qa.templates == CORPUS_TEMPLATES]
    parts = [corpus.groupby(CHECKPOINT_KEYS, as_index=False).accuracy.mean().rename(columns={"accuracy": accuracy})]
    if len(smi):
        reported = smi[(smi.counts == "exact") & (smi.templates == CORPUS_TEMPLATES) & (smi["size"] == size)]
        parts.append(
            reported[[*CHECKPOINT_KEYS, "r2", "upper_bound"]].rename(columns={"r2": r2, "upper_bound": upper_bound})
        )
    person = specialization[specialization.view == "person"]
    parts.append(person[[*CHECKPOINT_KEYS, "pss", "masking"]].rename(columns={"pss": pss, "masking": masking}))
    long = pd.concat([part.melt(CHECKPOINT_KEYS, var_name="metric") for part in parts], ignore_index=True)
    return long.assign(run=PRETRAINING, seed=seed)[[*CHECKPOINT_KEYS, "run", "seed", "metric", "value"]]


#: Values of the specialization summary that may be NaN: the interval of fewer than two concepts, and every
#: value of a view without a concept (kentropy.measurement.specialization.CONCEPT_MISSING).
SPECIALIZATION_SUMMARY_MISSING = ("pss", "ci_low", "ci_high", "masking", "masking_ci_low", "masking_ci_high")


def specialization_summary(peak: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per ``keys`` + view: PSS, the mean of the concepts' peaks, and ``masking``, the mean of what masking adds
    to each, each with its Student-t 95% interval over concepts (concepts with a NaN peak left out; ``concepts``
    counts those kept)."""
    rows = []
    for key, group in peak.groupby([*keys, "view"], sort=True):
        kept = group[group.pss.notna()]
        row = dict(zip([*keys, "view"], key))
        for column, names in (
            ("pss", ("pss", "ci_low", "ci_high")),
            ("masking", ("masking", "masking_ci_low", "masking_ci_high")),
        ):
            row.update(zip(names, mean_interval(kept[column]) if len(kept) else (np.nan,) * 3))
        rows.append({**row, "concepts": len(kept)})
    return pd.DataFrame(rows)

"""Parameter specialization (PSS; Hong et al., arXiv 2505.17260, no code released): how far masking the FFN value
vectors most specific to one concept hurts that concept's questions more than other questions.

For a concept (a person: the questions about them; second view, a relation) and a checkpoint:
1. each value vector (memory vector: a column of a layer's ``down`` projection) is scored by the mean
   |coefficient| over the prompt tokens of the concept's questions minus the same mean over the control
   questions (other concepts' questions);
2. the top-k vectors over all layers are masked (their coefficients set to 0 by a forward pre-hook on
   ``down``), for each k of a grid;
3. CS = accuracy on the concept's questions, GS = on the control questions, before and after masking;
   PSS(k) = |GS_after - CS_after| / GS_before, and a concept's PSS is the peak over the grid;
4. the checkpoint's PSS is the mean over concepts, with a Student-t interval over concepts.
PSS carries the gap between a concept's and the control accuracy that exists before any masking (PSS at k = 0,
``pss_unmasked``); ``masking`` = peak PSS - PSS at k = 0 is what masking itself adds.
Accuracy is the greedy match (kentropy.measurement.qa: the greedy continuation begins with the object), one forward
pass per question. The choices the paper leaves open are listed in docs/design.md, "Parameter specialization".
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from ..evaluation.probes import encode_probe, score_targets
from ..sources.architectures import decoder_layers
from ..sources.corpora import pad_id_of, padded_batches
from ..sources.facts_file import CORPUS_TEMPLATES, questions

#: The two views of a concept: the questions about one person, or of one relation.
VIEWS = ("person", "relation")
#: Columns of one checkpoint's per-concept, per-k rows.
CONCEPT_COLUMNS = ["view", "concept", "frequency", "k", "cs_before", "gs_before", "cs_after", "gs_after", "pss",
                   "pss_unmasked", "n_concept", "n_control"]  # fmt: skip
#: NaN by definition: ``pss`` where the control accuracy before masking is 0 (no ratio), ``frequency`` of a
#: relation concept or without counts (the summary's: kentropy.analysis.fact_tables.SPECIALIZATION_SUMMARY_MISSING).
CONCEPT_MISSING = ("pss", "pss_unmasked", "masking", "frequency")


@torch.no_grad()
def question_coefficients(model, sequences: list[list[int]], batch_size: int, pad_id: int) -> np.ndarray:
    """(questions, layers, d_ff) float64: each question's mean |coefficient| over its tokens."""
    layers = decoder_layers(model)
    device = next(model.parameters()).device
    out = np.zeros((len(sequences), len(layers), layers[0].down.in_features))
    captured: dict[int, torch.Tensor] = {}
    handles = [
        layer.down.register_forward_pre_hook(lambda m, args, i=i: captured.__setitem__(i, args[0]))
        for i, layer in enumerate(layers)
    ]
    try:
        for start, batch in zip(range(0, len(sequences), batch_size), padded_batches(sequences, batch_size, pad_id)):
            mask = batch["attention_mask"].to(device)
            model.base_model(input_ids=batch["input_ids"].to(device), attention_mask=mask)
            weights = (mask.double() / mask.sum(1, keepdim=True))[..., None]
            for i in range(len(layers)):
                coef = captured[i].reshape(*mask.shape, -1).double().abs()
                out[start : start + len(mask), i] = (coef * weights).sum(1).cpu().numpy()
    finally:
        for handle in handles:
            handle.remove()
    return out


def vector_scores(coefficients: np.ndarray, concept: np.ndarray, control: np.ndarray) -> np.ndarray:
    """(layers, d_ff): mean coefficient over the ``concept`` questions minus over the ``control`` ones (masks)."""
    return coefficients[concept].mean(0) - coefficients[control].mean(0)


def top_vectors(scores: np.ndarray, k: int) -> np.ndarray:
    """The (layer, index) pairs of the ``k`` highest scores over all layers (ties: the lower flat index)."""
    flat = np.argsort(-scores.reshape(-1), kind="stable")[:k]
    return np.stack(np.unravel_index(flat, scores.shape), axis=1)


@contextmanager
def masked(model, vectors: np.ndarray):
    """Within the block, the coefficients of ``vectors`` ((layer, index) pairs) are 0 on every token."""
    layers = decoder_layers(model)
    chosen = {layer: torch.as_tensor(vectors[vectors[:, 0] == layer, 1]) for layer in set(vectors[:, 0].tolist())}

    def hook(module, args, layer):
        coef = args[0].clone()
        coef[..., chosen[layer].to(coef.device)] = 0
        return (coef, *args[1:])

    handles = [layers[i].down.register_forward_pre_hook(lambda m, a, i=i: hook(m, a, i)) for i in chosen]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def pss(gs_after: float, cs_after: float, gs_before: float) -> float:
    """|GS_after - CS_after| / GS_before (NaN when GS_before is 0)."""
    return abs(gs_after - cs_after) / gs_before if gs_before > 0 else np.nan


def concept_sets(facts: pd.DataFrame, n_concepts: int, n_control: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """The questions PSS asks (corpus templates only) and, per view, {concept: (concept mask, control mask,
    frequency)}. Person concepts: ``n_concepts`` subjects spread evenly over the ranks of their document count
    ``n_s`` (file order without counts); their control: ``n_control`` questions drawn (``seed``) about the
    other subjects. Relation concepts: each relation over the same questions, the other relations as control."""
    asked = questions(facts)
    asked = asked[asked.templates == CORPUS_TEMPLATES].reset_index(drop=True)
    subjects = facts.drop_duplicates("subject")
    if "n_s" in facts:
        subjects = subjects.sort_values("n_s", ascending=False, kind="stable")
    ranked = list(subjects.subject)
    picks = np.unique(np.round(np.linspace(0, len(ranked) - 1, min(n_concepts, len(ranked)))).astype(int))
    chosen = [ranked[i] for i in picks]
    others = asked.index[~asked.subject.isin(chosen)].to_numpy()
    control_rows = np.random.default_rng(seed).permutation(others)[:n_control]
    pool = asked[asked.subject.isin(chosen) | asked.index.isin(control_rows)].reset_index(drop=True)
    control = ~pool.subject.isin(chosen).to_numpy()
    frequency = dict(zip(facts.subject, facts.n_s)) if "n_s" in facts else {}
    sets = {"person": {}, "relation": {}}
    for subject in chosen:
        sets["person"][subject] = ((pool.subject == subject).to_numpy(), control, frequency.get(subject, np.nan))
    for relation in sorted(pool.relation.unique()):
        is_relation = (pool.relation == relation).to_numpy()
        sets["relation"][relation] = (is_relation, ~is_relation, np.nan)
    return pool, sets


def specialization(
    model, tokenizer, facts: pd.DataFrame, ks: list[int], n_concepts: int, n_control: int, batch_size: int, seed: int
) -> pd.DataFrame:
    """Every concept of both views at every k of the grid: ``CONCEPT_COLUMNS``."""

    pad = pad_id_of(tokenizer)
    pool, sets = concept_sets(facts, n_concepts, n_control, seed)
    prompts = [tokenizer(p)["input_ids"] for p in pool.prompt]
    coefficients = question_coefficients(model, prompts, batch_size, pad)
    encoded = [encode_probe(tokenizer, p, o) for p, o in zip(pool.prompt, pool.object)]

    def accuracy(rows: np.ndarray) -> np.ndarray:
        return score_targets(model, [encoded[i] for i in rows], batch_size, pad, progress=False)[1]

    before = accuracy(np.arange(len(pool)))
    rows = []
    for view, concepts in sets.items():
        for concept, (is_concept, is_control, frequency) in concepts.items():
            concept_idx, control_idx = np.flatnonzero(is_concept), np.flatnonzero(is_control)
            scores = vector_scores(coefficients, is_concept, is_control)
            cs_before, gs_before = before[concept_idx].mean(), before[control_idx].mean()
            for k in ks:
                with masked(model, top_vectors(scores, k)):
                    after = accuracy(np.concatenate([concept_idx, control_idx]))
                cs_after, gs_after = after[: len(concept_idx)].mean(), after[len(concept_idx) :].mean()
                rows.append((view, concept, frequency, k, cs_before, gs_before, cs_after, gs_after,
                             pss(gs_after, cs_after, gs_before), pss(gs_before, cs_before, gs_before),
                             len(concept_idx), len(control_idx)))  # fmt: skip
    return pd.DataFrame(rows, columns=CONCEPT_COLUMNS)


def peaks(concepts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per ``keys`` + view + concept: the peak PSS over the k grid, the k that reached it (the smallest on a tie;
    NaN PSS when it is NaN at every k), PSS at k = 0 and ``masking``, the peak minus PSS at k = 0."""
    group = [*keys, "view", "concept", "frequency"]
    ordered = concepts.sort_values([*group, "k"], kind="stable")
    best = ordered.loc[ordered.pss.fillna(-np.inf).groupby([ordered[c] for c in group], dropna=False).idxmax()]
    best = best.assign(masking=best.pss - best.pss_unmasked)
    columns = [*group, "k", "pss", "pss_unmasked", "masking", "cs_before", "gs_before"]
    return best[columns].rename(columns={"k": "k_peak"}).reset_index(drop=True)

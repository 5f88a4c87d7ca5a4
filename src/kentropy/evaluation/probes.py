"""Probe scores of the injected knowledge, in two definitions (both always computed).

- ``per_token`` (Chang et al. 2024): mean log-probability of a probe's target tokens given its input.
- ``released``: the arithmetic of the in-loop evaluator of the paper's released code (OLMo's LM
  evaluator over the fictional-knowledge probes, kaistAI/Knowledge-Entropy ``olmo/data/__init__.py``
  ``build_eval_dataloader`` and ``olmo/train.py`` ``eval_batch``): a probe is ``input + " " + target``
  tokenised as one string without special tokens, its targets are the tokens after those of the input;
  its score is the summed target log-probability divided by (padded length of its evaluation batch − 1),
  because the evaluator averages the per-token loss over every position of the padded batch. Batches are
  the probes of one split and kind in file order, dealt to the data-parallel ranks as a non-shuffling
  ``DistributedSampler`` deals them, ``batch_size`` per rank (``ReleasedEvaluator``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..core.plan import ReleasedEvaluator
from ..core.vocabulary import SCORES
from ..sources.corpora import pad_id_of, padded_batches


def encode_probe(tokenizer, text: str, target: str) -> tuple[list[int], int]:
    """``per_token``: token ids of ``input + " " + target`` and the number of target tokens at its end.

    Input and target are tokenised separately (special tokens, e.g. BOS, only on the input), so the
    target's tokens are the same whatever the input ends with.
    """
    context = tokenizer(text.rstrip())["input_ids"]
    answer = tokenizer(" " + target.strip(), add_special_tokens=False)["input_ids"]
    return context + answer, len(answer)


def encode_probe_released(tokenizer, text: str, target: str) -> tuple[list[int], int]:
    """``released``: ``f"{input} {target}"`` tokenised whole, no special tokens; the targets are the tokens
    after the input's own tokens."""
    whole = tokenizer(f"{text} {target}", add_special_tokens=False)["input_ids"]
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    return whole, len(whole) - len(prompt)


def released_divisors(lengths: list[int], evaluator: ReleasedEvaluator) -> np.ndarray:
    """Per probe (in file order): the padded length of its evaluation batch, minus 1.

    The sampler pads the probe list to a multiple of the world size by repeating its first probes and
    gives rank r every world_size-th slot from r; each rank cuts its slots into batches. A probe is
    counted in its own slot (the repeated slots only widen the batches they land in).
    """
    n, world = len(lengths), evaluator.world_size
    slots = list(range(n)) + [i % n for i in range(-(-n // world) * world - n)]
    divisors = np.zeros(n, dtype=np.float64)
    for rank in range(world):
        mine = list(range(rank, len(slots), world))  # slot numbers of this rank, in order
        for first in range(0, len(mine), evaluator.batch_size):
            batch = mine[first : first + evaluator.batch_size]
            width = max(lengths[slots[j]] for j in batch)
            for j in batch:
                if j < n:
                    divisors[j] = width - 1
    return divisors


@torch.no_grad()
def score_targets(
    model, sequences: list[tuple[list[int], int]], batch_size: int, pad_id: int, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence: the summed log-probability of its last ``n_target`` tokens, and whether each of them is
    the model's most likely next token (so a greedy continuation of the rest would begin with them), from
    right-padded batches.

    The output layer runs only on the positions that predict a target token (a probe's target is a few
    of its tokens): the same numbers as full logits, at a fraction of the vocabulary-sized work.
    """
    device = next(model.parameters()).device
    head = model.get_output_embeddings()
    sums, matched = [], []
    batches = padded_batches([ids for ids, _ in sequences], batch_size, pad_id)
    starts = tqdm(range(0, len(sequences), batch_size), desc="targets", unit="batch", disable=not progress)
    for start, batch in zip(starts, batches):
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        rows, positions = [], []
        for row, ((_, n_target), length) in enumerate(zip(sequences[start : start + batch_size], mask.sum(1).tolist())):
            rows += [row] * n_target
            positions += range(length - 1 - n_target, length - 1)  # position i predicts token i + 1
        rows, positions = torch.tensor(rows, device=device), torch.tensor(positions, device=device)
        logits = head(hidden[rows, positions])
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        targets = ids[rows, positions + 1]
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None])[:, 0].double()
        counts = torch.tensor([n for _, n in sequences[start : start + batch_size]], device=device)
        owner = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)
        sums += torch.zeros(len(counts), dtype=torch.float64, device=device).index_add_(0, owner, logprobs).tolist()
        misses = (logits.argmax(-1) != targets).double()
        hits = torch.zeros(len(counts), dtype=torch.float64, device=device).index_add_(0, owner, misses) == 0
        matched += hits.tolist()
    return np.asarray(sums, dtype=np.float64), np.asarray(matched, dtype=bool)


@dataclass(frozen=True)
class EncodedProbes:
    """A probe table tokenised for both scores: what scoring the same probes again (retention curves score
    them after many steps) does not repeat."""

    probes: pd.DataFrame  #: the probe rows (``split``, ``kind``, ``input``, ``target``), in file order
    per_token: list[tuple[list[int], int]]  #: ``encode_probe`` of each row
    released: list[tuple[list[int], int]]  #: ``encode_probe_released`` of each row
    pad_id: int  #: the tokenizer's padding id (its EOS when it has none)


def encode_probes(tokenizer, probes: pd.DataFrame, max_length: int | None = None) -> EncodedProbes:
    """Both encodings of every probe row. Sequences longer than ``max_length`` lose tokens from the left of
    the input (in both encodings)."""
    encodings = {
        "per_token": [encode_probe(tokenizer, t, g) for t, g in zip(probes["input"], probes["target"])],
        "released": [encode_probe_released(tokenizer, t, g) for t, g in zip(probes["input"], probes["target"])],
    }
    if max_length is not None:
        encodings = {
            name: [(ids[-max_length:], min(n, max_length - 1)) for ids, n in enc] for name, enc in encodings.items()
        }
    return EncodedProbes(probes, encodings["per_token"], encodings["released"], pad_id_of(tokenizer))


def score_encoded(
    model, encoded: EncodedProbes, batch_size: int, released: ReleasedEvaluator, progress: bool = True
) -> pd.DataFrame:
    """Both scores of every encoded probe: a frame with columns ``SCORES``, aligned with ``encoded.probes``.
    ``batch_size`` only sets how many sequences share a forward pass; ``progress``: a bar over the batches."""
    # The two encodings usually coincide: each distinct sequence goes through the model once.
    unique = list(dict.fromkeys((tuple(ids), n) for ids, n in encoded.per_token + encoded.released))
    sequences = [(list(ids), n) for ids, n in unique]
    logprobs = score_targets(model, sequences, batch_size, encoded.pad_id, progress)[0]
    sums = dict(zip(unique, logprobs))
    probes = encoded.probes
    out = pd.DataFrame(index=probes.index, columns=list(SCORES), dtype=np.float64)
    out["per_token"] = [sums[(tuple(ids), n)] / n for ids, n in encoded.per_token]
    released_sums = np.array([sums[(tuple(ids), n)] for ids, n in encoded.released])
    lengths = np.array([len(ids) for ids, _ in encoded.released])
    for rows in probes.reset_index(drop=True).groupby(["split", "kind"], sort=False).groups.values():
        rows = np.asarray(rows)  # positions of one evaluator's probes, in file order
        out.iloc[rows, out.columns.get_loc("released")] = released_sums[rows] / released_divisors(
            list(lengths[rows]), released
        )
    return out


def score_probes(
    model,
    tokenizer,
    probes: pd.DataFrame,
    batch_size: int,
    max_length: int | None,
    released: ReleasedEvaluator,
) -> pd.DataFrame:
    """Both scores of every probe row (columns ``split``, ``kind``, ``input``, ``target``, in file order):
    ``encode_probes`` then ``score_encoded``."""
    return score_encoded(model, encode_probes(tokenizer, probes, max_length), batch_size, released)


def probe_score_table(
    model,
    tokenizer,
    probes: pd.DataFrame,
    batch_size: int,
    max_length: int | None,
    released: ReleasedEvaluator,
) -> pd.DataFrame:
    """The probe rows without their text, each with both scores: the rows of a ``probes.parquet`` before its
    key columns (the evaluate rule, the training job's evaluation and ``kentropy probes``)."""
    scores = score_probes(model, tokenizer, probes, batch_size, max_length, released)
    return pd.concat([probes.drop(columns=["input", "target"]), scores], axis=1)

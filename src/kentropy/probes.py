"""Probe scores: mean log-probability of a probe's target tokens given its input (Chang et al. 2024)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .corpora import padded_batches


def encode_probe(tokenizer, text: str, target: str) -> tuple[list[int], int]:
    """Token ids of ``input + " " + target`` and the number of target tokens at its end.

    Input and target are tokenised separately (special tokens, e.g. BOS, only on the input), so the
    target's tokens are the same whatever the input ends with.
    """
    context = tokenizer(text.rstrip())["input_ids"]
    answer = tokenizer(" " + target.strip(), add_special_tokens=False)["input_ids"]
    return context + answer, len(answer)


@torch.no_grad()
def score_probes(model, tokenizer, probes: pd.DataFrame, batch_size: int, max_length: int | None = None) -> np.ndarray:
    """Mean target-token log-probability of each probe row (columns ``input``, ``target``).

    Batches are right-padded; a probe's divisor is its own target length, so padding never counts.
    Sequences longer than ``max_length`` lose tokens from the left of the input.
    """
    encoded = [encode_probe(tokenizer, t, g) for t, g in zip(probes["input"], probes["target"])]
    if max_length is not None:
        encoded = [(ids[-max_length:], min(n, max_length - 1)) for ids, n in encoded]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    scores = []
    batches = padded_batches([ids for ids, _ in encoded], batch_size, pad_id)
    for start, batch in zip(tqdm(range(0, len(encoded), batch_size), desc="probes", unit="batch"), batches):
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        lengths = mask.sum(1)
        for row, (_, n_target) in enumerate(encoded[start:start + batch_size]):
            end = int(lengths[row]) - 1  # logprobs[i] scores token i + 1
            scores.append(logprobs[row, end - n_target:end].mean().item())
    return np.asarray(scores, dtype=np.float64)

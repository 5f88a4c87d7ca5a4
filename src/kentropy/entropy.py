"""Knowledge, attention and next-token entropy of a causal LM over a corpus, in one streaming pass.

Definitions (docs/design.md): knowledge entropy is, per layer, the Shannon entropy of the corpus-averaged
|memory coefficient| vector normalised to sum 1, summed over layers (Eq. 2); the ``relu`` variant uses
max(coef, 0). Attention entropy is the entropy of each head's attention over keys, averaged over heads and
non-padding query positions, per layer, summed over layers (Eq. 3). Next-token entropy is the entropy of
the predicted distribution, averaged over non-padding positions.

Averages are the paper's by default (``average="instance"``): over each instance's tokens, then over
instances, 1/|D| sum_n 1/T_n sum_j (Eq. 2, Eq. 3, A.4); ``"token"`` pools every token of the corpus
instead. Both are one weighted sum: token j of instance n weighs 1/T_n (instance) or 1 (token), and the
total divides by the sum of the weights.

Only float64 running sums are kept (layers x d_ff for coefficients, one value per layer for attention),
so memory does not grow with the corpus. Padding never enters a sum or a count.

Every sum over tokens is taken in an order fixed by the batch's shape alone (``fixed_order_sum``, and
column sums, which torch splits across threads by column), never by a BLAS dot product or a full
reduction, whose order follows the number of threads: the same checkpoint and corpus give the same bits
with 1, 2 or 4 threads (tests/test_integrity.py; docs/design.md, "Integrity", says which counts and why).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .architectures import decoder_layers
from .attention import ENTROPY_ATTENTION

METRICS = ("knowledge_entropy", "knowledge_entropy_relu", "attention_entropy", "next_token_entropy")
AVERAGES = ("instance", "token")


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that count only real tokens, so left and right padding give the same positions."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


#: Elements summed together at each level of ``fixed_order_sum``.
_SUM_BLOCK = 256


def fixed_order_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum of a 1-D tensor in an order that depends on its length only: blocks of ``_SUM_BLOCK`` summed row by
    row (one thread per row, whatever the thread count), level after level, down to one short vector. A
    plain ``sum()`` or dot product splits a long vector across threads, so its rounding follows their count."""
    while values.numel() > _SUM_BLOCK:
        values = torch.nn.functional.pad(values, (0, -values.numel() % _SUM_BLOCK)).view(-1, _SUM_BLOCK).sum(1)
    return values.sum()


def shannon_entropy(weights: np.ndarray) -> float:
    """Entropy (nats) of a non-negative vector after normalising it to sum 1; 0 log 0 = 0."""
    p = np.asarray(weights, dtype=np.float64)
    p = p / p.sum()
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


# Logits per chunk of rows on CPU: the three temporaries of a chunk (4 MiB each in float32) stay in cache.
# At vocabularies of 16k and 50k that is several times faster than chunks of 256 rows (bench/next_token_entropy.py).
CPU_CHUNK_LOGITS = 2**20


def next_token_entropy(logits: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Entropy (nats) of softmax(row) for each row of (n, vocab) ``logits``, computed in ``dtype``.

    With z' = z - max z, e = exp(z') and s = sum e: H = log s - sum(e z') / s, one exponential per logit.
    Rows go in chunks (cache-sized on CPU, 256 rows elsewhere), so memory stays flat in the batch size.
    sum(e z') is a reduction, not a batched dot product: in float32 over a 50k vocabulary the dot product
    put a row's entropy off by up to 7e-5 relative on a 2-core CPU, the reduction by 5e-7.
    """
    rows = max(1, CPU_CHUNK_LOGITS // logits.shape[-1]) if logits.device.type == "cpu" else 256
    out = torch.empty(logits.shape[0], dtype=dtype, device=logits.device)
    for chunk, h in zip(logits.split(rows), out.split(rows)):
        z = chunk.to(dtype)
        shifted = z - z.amax(-1, keepdim=True)
        e = shifted.exp()
        s = e.sum(-1)
        torch.sub(s.log(), e.mul_(shifted).sum(-1) / s, out=h)
    return out


class EntropyMeter:
    """Running sums for every metric; attach with :meth:`hooks`, feed batches with :meth:`update`."""

    def __init__(self, model: nn.Module, average: str = "instance"):
        if average not in AVERAGES:
            raise ValueError(f"entropy.average: {average!r} is not one of {', '.join(AVERAGES)}")
        self.model = model
        self.average = average
        self.layers = decoder_layers(model)
        # Under kentropy.attention the attention modules return per-query entropies, not weights.
        self.fused = getattr(model.config, "_attn_implementation", None) == ENTROPY_ATTENTION
        n_layers, d_ff = len(self.layers), self.layers[0].down.in_features
        first = next(model.parameters())
        device = self._device = first.device
        # Sums accumulate in float32 at least (a bf16 matrix-vector product would round its result to bf16).
        self._sum_dtype = torch.promote_types(first.dtype, torch.float32)
        self.abs_coef_sum = torch.zeros(n_layers, d_ff, dtype=torch.float64, device=device)
        self.relu_coef_sum = torch.zeros(n_layers, d_ff, dtype=torch.float64, device=device)
        self.attention_sum = torch.zeros(n_layers, dtype=torch.float64, device=device)
        self.next_token_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.n_tokens = 0
        self.weight_total = torch.zeros((), dtype=torch.float64, device=device)  # the averages' denominator
        self._weights: torch.Tensor | None = None  # flattened per-token weights of the current batch

    # -- hooks -------------------------------------------------------------------------------------
    def _coefficient_hook(self, layer: int):
        def hook(module, args):
            coef = args[0].reshape(-1, args[0].shape[-1]).to(self._weights.dtype)  # (tokens, d_ff)
            # Weighted column sums (a column is reduced by one thread, in a fixed order; a matrix-vector
            # product's order follows the BLAS threads). relu(x) = (x + |x|) / 2, so the signed sum gives
            # the ReLU variant without a clamped copy.
            weights = self._weights[:, None]
            abs_sum = coef.abs().mul_(weights).sum(0).double()
            signed_sum = coef.mul(weights).sum(0).double()
            self.abs_coef_sum[layer] += abs_sum
            self.relu_coef_sum[layer] += (abs_sum + signed_sum) / 2

        return hook

    def _attention_hook(self, layer: int):
        def hook(module, args, output):
            weights = output[1]
            if weights is None:
                raise RuntimeError(
                    "attention weights are not returned; load the model with attn_implementation='eager' or "
                    f"{ENTROPY_ATTENTION!r} (kentropy.attention)"
                )
            if self.fused:  # (batch, heads, seq) entropies
                per_query = weights.to(self._sum_dtype).mean(1)
            else:  # (batch, heads, seq, seq) weights
                per_query = torch.special.entr(weights.float()).sum(-1).mean(1)  # (batch, seq): mean over heads
            weighted = per_query.reshape(-1).to(self._weights.dtype) * self._weights
            self.attention_sum[layer] += fixed_order_sum(weighted).double()

        return hook

    @contextmanager
    def hooks(self) -> Iterator[None]:
        handles = []
        try:
            for i, layer in enumerate(self.layers):
                handles.append(layer.down.register_forward_pre_hook(self._coefficient_hook(i)))
                handles.append(layer.attention.register_forward_hook(self._attention_hook(i)))
            yield
        finally:
            for h in handles:
                h.remove()

    # -- feeding -----------------------------------------------------------------------------------
    @torch.no_grad()
    def update(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
        """One forward pass over a padded batch; padding positions (mask 0) are ignored everywhere."""
        input_ids, attention_mask = input_ids.to(self._device), attention_mask.to(self._device)
        # Padding is excluded by weight 0, so batches are right-padded (no fully masked, NaN-prone rows).
        weights = attention_mask.to(torch.float64)
        if self.average == "instance":
            weights = weights / weights.sum(1, keepdim=True).clamp(min=1)
        self.weight_total += fixed_order_sum(weights.reshape(-1))
        self._weights = weights.reshape(-1).to(self._sum_dtype)
        logits = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
        ).logits
        entropies = next_token_entropy(logits.reshape(-1, logits.shape[-1]), self._sum_dtype)
        self.next_token_sum += fixed_order_sum(entropies.double() * weights.reshape(-1))
        self.n_tokens += int(attention_mask.sum())
        self._weights = None

    # -- results -----------------------------------------------------------------------------------
    def mean_abs_coefficients(self) -> np.ndarray:
        """(layers, d_ff) corpus-mean |coefficient|: the input of resuscitation."""
        return (self.abs_coef_sum / self.weight_total).cpu().numpy()

    def table(self) -> pd.DataFrame:
        """Long table (metric, layer, value, n_tokens); layer is null (<NA>) for whole-model values."""
        if self.n_tokens == 0:
            raise ValueError("no non-padding tokens were measured; the corpus is empty")
        rows = []
        for metric, sums in (("knowledge_entropy", self.abs_coef_sum), ("knowledge_entropy_relu", self.relu_coef_sum)):
            per_layer = [shannon_entropy(s) for s in sums.cpu().numpy()]
            rows += [(metric, i, v) for i, v in enumerate(per_layer)] + [(metric, None, sum(per_layer))]
        attention = (self.attention_sum / self.weight_total).cpu().tolist()
        rows += [("attention_entropy", i, v) for i, v in enumerate(attention)] + [
            ("attention_entropy", None, sum(attention))
        ]
        rows.append(("next_token_entropy", None, float(self.next_token_sum / self.weight_total)))
        table = pd.DataFrame(rows, columns=["metric", "layer", "value"])
        table["layer"] = table["layer"].astype("Int64")
        table["n_tokens"] = self.n_tokens
        return table


def measure(
    model: nn.Module,
    batches: Iterable[dict],
    total: int | None = None,
    progress: bool = True,
    average: str = "instance",
) -> EntropyMeter:
    """Run every batch (dicts with input_ids and attention_mask) through ``model`` under the hooks."""
    meter = EntropyMeter(model, average)
    with meter.hooks():
        for batch in tqdm(batches, total=total, desc="entropy", unit="batch", disable=not progress):
            meter.update(batch["input_ids"], batch["attention_mask"])
    return meter

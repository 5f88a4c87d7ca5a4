"""Every registered per-checkpoint metric (kentropy.measurement.meters: the paper's entropies, the sparsity of memory
use, any plug-in) of a causal LM over a corpus, in one streaming pass.

Averages are the paper's by default (``average="instance"``): over each instance's tokens, then over
instances, 1/|D| sum_n 1/T_n sum_j (Eq. 2, Eq. 3, A.4); ``"token"`` pools every token of the corpus
instead. Both are one weighted sum: token j of instance n weighs 1/T_n (instance) or 1 (token), and the
total divides by the sum of the weights.

Only float64 running sums are kept, one per registered statistic (layers x d_ff for coefficients, one value
per layer for attention), so memory does not grow with the corpus. Padding never enters a sum or a count.
Every sum over tokens is taken in an order fixed by the batch's shape alone (kentropy.measurement.meters.kernels): the
same checkpoint and corpus give the same bits with 1, 2 or 4 threads (docs/design.md, "Integrity").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.plan import EntropySpec
from ..sources.architectures import decoder_layers, load_causal_lm
from ..sources.corpora import longest_first, pad_id_of, padded_batches, token_sequences
from .attention import ENTROPY_ATTENTION
from .meters import ABS_COEFFICIENTS, HOOKS, METRICS, STATISTICS, per_layer
from .meters.kernels import fixed_order_sum

AVERAGES = ("instance", "token")


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that count only real tokens, so left and right padding give the same positions."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class EntropyMeter:
    """A running sum per registered statistic; attach with :meth:`hooks`, feed batches with :meth:`update`,
    read every registered metric with :meth:`table`. ``statistics``: sum only these (names of
    kentropy.meters.STATISTICS), for a caller that needs one sum rather than the metrics."""

    def __init__(self, model: nn.Module, average: str, statistics: Iterable[str] | None = None):
        if average not in AVERAGES:
            raise ValueError(f"entropy.average: {average!r} is not one of {', '.join(AVERAGES)}")
        self.model = model
        self.average = average
        self.layers = decoder_layers(model)
        # Under kentropy.measurement.attention the attention modules return per-query entropies, not weights.
        self.fused = getattr(model.config, "_attn_implementation", None) == ENTROPY_ATTENTION
        n_layers, d_ff = len(self.layers), self.layers[0].down.in_features
        first = next(model.parameters())
        device = self._device = first.device
        # Sums accumulate in float32 at least (a bf16 matrix-vector product would round its result to bf16).
        self.sum_dtype = torch.promote_types(first.dtype, torch.float32)
        self.sums = {
            name: torch.zeros(
                ([] if stat.hook == "logits" else [n_layers]) + ([d_ff] if stat.per_memory_vector else []),
                dtype=torch.float64,
                device=device,
            )
            for name, stat in STATISTICS.items()
            if statistics is None or name in statistics
        }
        # The statistics each hook feeds, looked up once rather than on every layer of every batch.
        self._fed_by = {hook: [(n, STATISTICS[n]) for n in self.sums if STATISTICS[n].hook == hook] for hook in HOOKS}
        self.n_tokens = 0
        self.weight_total = torch.zeros((), dtype=torch.float64, device=device)  # the averages' denominator
        self.token_weights: torch.Tensor | None = None  #: the current batch's flattened token weights, sum dtype
        self.token_weights64: torch.Tensor | None = None  #: the same in float64

    # -- hooks -------------------------------------------------------------------------------------
    def _accumulate(self, hook: str, layer: int | None, value) -> None:
        """Add every statistic of ``hook`` for this forward pass (they share one cache per call)."""
        cache: dict = {}
        for name, stat in self._fed_by[hook]:
            summand = stat.accumulate(self, value, cache)
            if layer is None:
                self.sums[name] += summand
            else:
                self.sums[name][layer] += summand

    @contextmanager
    def hooks(self) -> Iterator[None]:
        handles = []
        try:
            for i, layer in enumerate(self.layers):
                if self._fed_by["ffn_input"]:
                    handles.append(
                        layer.down.register_forward_pre_hook(
                            lambda m, args, i=i: self._accumulate("ffn_input", i, args[0])
                        )
                    )
                if self._fed_by["attention"]:
                    handles.append(
                        layer.attention.register_forward_hook(
                            lambda m, a, out, i=i: self._accumulate("attention", i, out)
                        )
                    )
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
        self.token_weights64 = weights.reshape(-1)
        self.token_weights = self.token_weights64.to(self.sum_dtype)
        logits = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
        ).logits
        self._accumulate("logits", None, logits)
        self.n_tokens += int(attention_mask.sum())
        self.token_weights = self.token_weights64 = None

    # -- results -----------------------------------------------------------------------------------
    def mean_abs_coefficients(self) -> np.ndarray:
        """(layers, d_ff) corpus-mean |coefficient|: the input of resuscitation."""
        return (self.sums[ABS_COEFFICIENTS] / self.weight_total).cpu().numpy()

    def table(self) -> pd.DataFrame:
        """Long table (metric, layer, value, n_tokens), every registered metric in registration order: a row
        per layer, then the whole-model row (layer null, <NA>)."""
        if self.n_tokens == 0:
            raise ValueError("no non-padding tokens were measured; the corpus is empty")
        if set(self.sums) != set(STATISTICS):
            raise ValueError(f"a meter of {', '.join(self.sums)} alone has no table of every metric")
        total = float(self.weight_total)
        rows = []
        for name, metric in METRICS.items():
            sums = self.sums[metric.statistic].cpu().numpy()
            if per_layer(metric):
                values = [metric.layer(s, total) for s in sums]
                rows += [(name, i, v) for i, v in enumerate(values)] + [(name, None, metric.whole(values))]
            else:
                rows.append((name, None, metric.layer(sums, total)))
        table = pd.DataFrame(rows, columns=["metric", "layer", "value"])
        table["layer"] = table["layer"].astype("Int64")
        table["n_tokens"] = self.n_tokens
        return table


def _load(checkpoint: str, corpus: pd.DataFrame, spec: EntropySpec, device: str | None):
    """The checkpoint's model (``spec``'s dtype and attention, on ``device``: default cuda when available), its
    tokenizer, and the corpus's token sequences cut to ``spec.max_length``, in the corpus's order."""
    from transformers import AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    attention = ENTROPY_ATTENTION if spec.attention == "fused" else "eager"
    model = load_causal_lm(checkpoint, getattr(torch, spec.dtype), attention).to(device)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    return model, tokenizer, token_sequences(corpus, tokenizer, spec.max_length)


def measure_checkpoint(
    checkpoint: str,
    corpus: pd.DataFrame,
    spec: EntropySpec,
    batch_size: int,
    device: str | None = None,
    progress: bool = True,
) -> EntropyMeter:
    """Every registered metric of the ``save_pretrained`` checkpoint in ``checkpoint`` over ``corpus`` (a
    ``text`` or ``input_ids`` column, kentropy.sources.corpora): what the ``measure_entropy`` rule and ``kentropy
    entropy`` both run. Documents are measured longest first, in batches of similar length
    (``corpora.longest_first``): the averages do not depend on the order, and little of a batch is padding."""
    model, tokenizer, sequences = _load(checkpoint, corpus, spec, device)
    sequences = longest_first(sequences)
    n_batches = -(-len(sequences) // batch_size)
    batches = padded_batches(sequences, batch_size, pad_id_of(tokenizer))
    return measure(model, batches, total=n_batches, progress=progress, average=spec.average)


def checkpoint_document_sums(checkpoint: str, corpus: pd.DataFrame, spec: EntropySpec, device: str | None = None):
    """``document_coefficient_sums`` of the checkpoint in ``checkpoint`` over ``corpus``, loaded, tokenized and
    truncated as ``measure_checkpoint`` does, documents in the corpus's order (the lab's bootstrap input)."""
    model, _, sequences = _load(checkpoint, corpus, spec, device)
    return document_coefficient_sums(model, sequences, spec.average)


def measure(
    model: nn.Module,
    batches: Iterable[dict],
    total: int | None = None,
    progress: bool = True,
    *,
    average: str,
) -> EntropyMeter:
    """Run every batch (dicts with input_ids and attention_mask) through ``model`` under the hooks."""
    meter = EntropyMeter(model, average)
    with meter.hooks():
        for batch in tqdm(batches, total=total, desc="entropy", unit="batch", disable=not progress):
            meter.update(batch["input_ids"], batch["attention_mask"])
    return meter


def document_coefficient_sums(model: nn.Module, sequences: list[list[int]], average: str) -> np.ndarray:
    """(documents, layers, d_ff) float64: each document's own term of the meter's corpus |coefficient| sum
    (its tokens' weights under ``average``), one unpadded forward pass per document. Summed over documents
    they are the corpus sum; summed with bootstrap counts, a resampled corpus's (kentropy.analysis.lab_design,
    docs/lab.md)."""
    out = []
    for sequence in tqdm(sequences, desc="documents", unit="doc"):
        meter = EntropyMeter(model, average, statistics=[ABS_COEFFICIENTS])
        ids = torch.tensor([sequence])
        with meter.hooks():
            meter.update(ids, torch.ones_like(ids))
        out.append(meter.sums[ABS_COEFFICIENTS].cpu().numpy())
    return np.stack(out)

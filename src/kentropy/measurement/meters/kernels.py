"""Torch kernels the statistics accumulate with, each summing in an order fixed by the input's shape alone
(never a BLAS dot product or a full reduction, whose order follows the thread count), so the same
checkpoint and corpus give the same bits with 1, 2 or 4 threads (tests/test_integrity.py)."""

from __future__ import annotations

import torch

#: Elements summed together at each level of ``fixed_order_sum``.
_SUM_BLOCK = 256


def fixed_order_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum of a 1-D tensor in an order that depends on its length only: blocks of ``_SUM_BLOCK`` summed row by
    row (one thread per row, whatever the thread count), level after level, down to one short vector. A
    plain ``sum()`` or dot product splits a long vector across threads, so its rounding follows their count."""
    while values.numel() > _SUM_BLOCK:
        values = torch.nn.functional.pad(values, (0, -values.numel() % _SUM_BLOCK)).view(-1, _SUM_BLOCK).sum(1)
    return values.sum()


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

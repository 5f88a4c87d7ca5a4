"""The optimizer and learning-rate schedule shared by pretraining and continual training.

Both follow the OLMo code the paper trained with (kaistAI/Knowledge-Entropy, ``olmo/optim.py``):
``CosWithWarmup.get_lr`` and ``Scheduler._linear_warmup`` for the schedule, ``get_param_groups`` and
``build_optimizer`` for AdamW. docs/design.md, "Fidelity", cites the lines.
"""

from __future__ import annotations

import math

import torch

from ..core.plan import Optimizer, Schedule

#: OLMo's default ``warmup_min_lr``: the first warm-up step starts at 10% of the peak.
WARMUP_START = 0.1
#: OLMo's AdamW epsilon (``build_optimizer``: ``eps=1e-5``; torch's default is 1e-8).
ADAMW_EPS = 1e-5


def warmup_steps(total_steps: int, warmup_fraction: float) -> int:
    """Warm-up length in optimizer steps: ``round(warmup_fraction * total_steps)``, at least 1."""
    return max(1, round(warmup_fraction * total_steps))


def warmup_cosine(step: int, schedule: Schedule, warmup_start: float = WARMUP_START) -> float:
    """Multiplier of the peak learning rate for optimizer step ``step``, counted from 1 as OLMo's trainer
    counts it (its ``global_step`` is incremented before the update that uses the rate).

    Linear warm-up from ``warmup_start`` towards 1 over the warm-up steps, then cosine decay from 1 to
    ``schedule.alpha_f`` at ``schedule.total_steps``.
    """
    total, alpha_f = schedule.total_steps, schedule.alpha_f
    warmup = warmup_steps(total, schedule.warmup_fraction)
    if step < warmup:
        return warmup_start + (1 - warmup_start) * step / warmup
    if step >= total:
        return alpha_f
    progress = (step - warmup) / (total - warmup)
    return alpha_f + (1 - alpha_f) * 0.5 * (1 + math.cos(math.pi * progress))


def adamw(model: torch.nn.Module, optimizer: Optimizer, fused: bool = False) -> torch.optim.AdamW:
    """AdamW(0.9, 0.95, eps 1e-5) at ``optimizer``'s peak rate as OLMo builds it: weight decay on the weight
    matrices of linear layers only, none on embeddings (tied output embeddings included), norms or biases.
    ``fused``: torch's single-kernel update (GPU; the same update up to rounding). The clip is the trainer's."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    params = list(dict.fromkeys(model.parameters()))  # tied weights once
    # A weight built partitioned by ZeRO-3 is an empty 1-D tensor in place; ``ds_shape`` is the weight's shape.
    matrix = {id(p) for p in params if len(getattr(p, "ds_shape", p.shape)) >= 2}
    decay = [p for p in params if id(p) in matrix and id(p) not in embeddings]
    rest = [p for p in params if id(p) not in matrix or id(p) in embeddings]
    groups = [{"params": decay, "weight_decay": optimizer.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=optimizer.lr, betas=(0.9, 0.95), eps=ADAMW_EPS, fused=fused or None)

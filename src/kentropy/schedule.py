"""The optimizer and learning-rate schedule shared by pretraining and continual training."""

from __future__ import annotations

import math

import torch


def warmup_cosine(step: int, total_steps: int, warmup_fraction: float, alpha_f: float) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based).

    Linear warmup over ``round(warmup_fraction * total_steps)`` steps, then cosine decay from 1 to
    ``alpha_f`` at ``total_steps``.
    """
    warmup = max(1, round(warmup_fraction * total_steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return alpha_f + (1 - alpha_f) * 0.5 * (1 + math.cos(math.pi * progress))


def adamw(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW(0.9, 0.95), as in OLMo; weight decay on matrices only (not norms or biases)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))

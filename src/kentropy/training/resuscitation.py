"""Resuscitation (Algorithm 1 of Kim et al. 2025): amplify a checkpoint's least-used memory vectors.

With c the per-layer mean |coefficient| vector measured on the entropy corpus, neurons with
c_i <= quantile_p(c) get factor (mean(c) / c_i) * q and every other neuron factor 1. In a gated MLP the
coefficient is act(gate_i(x)) * up_i(x), so multiplying row i of ``up_proj`` by the factor multiplies
coefficient i by exactly that factor on every token, and leaves every other coefficient of the layer as
it was. A non-gated MLP (GPT-NeoX, Pythia; the lab's GELU recipe) has no such linear factor: its coefficient is
GELU(w_i · x + b_i), and Algorithm 1 here scales row i of the input projection and its bias, i.e. the
pre-activation, by the factor. GELU(f z) = f GELU(z) only where z >> 0, so there the coefficient scales by
about f, and where z < 0 it moves towards 0; the record says which was done (``scaled``, ``exact``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.errors import KentropyError
from ..core.integrity import checkpoint_dir, write_checksums
from ..core.io import reading

# torch and transformers are imported where used: the workflow imports this module at DAG build.


class ResuscitationError(KentropyError, ValueError):
    """Algorithm 1 cannot run with these settings or coefficients; the message names which."""


def resuscitation_factors(coef: np.ndarray, p: float, q: float) -> np.ndarray:
    """Per-layer factors (layers x d_ff): (mean(c) / c_i) * q where c_i <= the p-quantile of c, else 1.

    ``p`` is a fraction in (0, 1], ``q`` a finite ratio > 0, ``coef`` finite and >= 0 (a NaN in either would
    become a NaN weight). Neurons with c_i = 0 never fire on the corpus and cannot be scaled into use; they
    keep factor 1 (the released code would divide by zero).
    """
    if not 0 < p <= 1:
        raise ResuscitationError(f"p must be a fraction in (0, 1], got {p}")
    if not (np.isfinite(q) and q > 0):
        raise ResuscitationError(f"q must be a finite amplification ratio > 0, got {q}")
    coef = np.asarray(coef, dtype=np.float64)
    if coef.ndim != 2 or not np.isfinite(coef).all() or (coef < 0).any():
        raise ResuscitationError(
            f"the coefficients must be a layers x d_ff array of finite mean |coefficient| values >= 0 "
            f"(got shape {coef.shape}, {int((~np.isfinite(coef)).sum())} non-finite)"
        )
    factors = np.ones_like(coef)
    for layer, c in enumerate(coef):
        selected = (c <= np.quantile(c, p)) & (c > 0)
        factors[layer, selected] = c.mean() / c[selected] * q
    return factors


def scaled_projections(model) -> tuple[list, bool]:
    """The projection whose rows Algorithm 1 scales in each layer, and whether that scales each coefficient
    exactly: a gated MLP's ``up_proj`` (exact), else a non-gated MLP's input projection (the pre-activation)."""
    from ..sources.architectures import decoder_layers

    layers = decoder_layers(model)
    if all(layer.up is not None for layer in layers):
        return [layer.up for layer in layers], True
    return [layer.pre_activation for layer in layers], False


def apply_factors(model, factors: np.ndarray) -> bool:
    """Multiply row i of each layer's scaled projection (``scaled_projections``; its bias too, if any) by
    factor i, in place. Returns whether the coefficients scale exactly (gated MLP)."""
    import torch

    projections, exact = scaled_projections(model)
    if factors.shape != (len(projections), projections[0].out_features):
        raise ValueError(
            f"factors have shape {factors.shape}, the model has {len(projections)} layers x "
            f"{projections[0].out_features} memory vectors"
        )
    with torch.no_grad():
        for projection, f in zip(projections, factors):
            scale = torch.as_tensor(f, dtype=projection.weight.dtype, device=projection.weight.device)
            projection.weight.mul_(scale[:, None])
            if projection.bias is not None:
                projection.bias.mul_(scale)
    return exact


def resuscitate_checkpoint(
    checkpoint: str,
    coef_path: str,
    p_percent: int,
    q: float,
    out_dir: str,
    force: bool = False,
    producers: dict[str, str] | None = None,
) -> dict:
    """Write the resuscitated copy of ``checkpoint`` (weights in their stored dtype) with a record of
    what was done (``resuscitation.json``); returns that record. ``out_dir`` is replaced only if it is a
    previous checkpoint output (or ``force``), and never written with a non-finite weight. ``producers``: the
    rule's {input: rule}, so an unreadable coefficient file names the rule that writes it."""
    from transformers import AutoTokenizer

    from ..sources.architectures import load_causal_lm

    model = load_causal_lm(checkpoint, dtype="auto", attention="sdpa")
    with reading(coef_path, producers):
        coefficients = np.load(coef_path)
    factors = resuscitation_factors(coefficients, p_percent / 100, q)
    exact = apply_factors(model, factors)
    record = {
        "source": str(checkpoint),
        "coefficients": str(coef_path),
        "p": p_percent / 100,
        "q": q,
        "scaled": "up_proj rows" if exact else "input projection rows and biases (pre-activation)",
        "exact": exact,
        "selected_per_layer": [int((f != 1).sum()) for f in factors],
        "mean_factor_of_selected": [float(f[f != 1].mean()) if (f != 1).any() else 1.0 for f in factors],
    }
    with checkpoint_dir(out_dir, force) as tmp:
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(checkpoint).save_pretrained(tmp)
        (Path(tmp) / "resuscitation.json").write_text(json.dumps(record, indent=1))
        write_checksums(tmp)
    return record

"""Where two pretraining trajectories of one config part: the same tiny trajectory pretrained twice, e.g. under
two CPU kernel settings (``ATEN_CPU_CAPABILITY``, ``MKL_ENABLE_INSTRUCTIONS``), compared checkpoint by
checkpoint.

    ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 snakemake --directory B --cores 1 \\
        resources/tiny/checkpoints/tiny/step1200          # and the same without the variables into A
    python bench/trajectory_divergence.py A B [--config config/config.yaml] [--trajectory tiny-traj1]

For every configured step: the largest |difference| of any weight, the difference's L2 norm relative to the
weights', and each segment's last training loss (``results/<e>/pretrain/…loss.parquet``) in both projects;
the first training step whose loss differs beyond three bounds; and, where both projects have
``entropy.parquet``, the difference of every whole-model metric per step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file

from kentropy.core.config import load_config
from kentropy.core.layout import Layout, parse_trajectory_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="project folder (the --directory of one run)")
    parser.add_argument("b", type=Path, help="project folder of the other run")
    parser.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[1] / "config/config.yaml")
    parser.add_argument("--trajectory", default="tiny", help="a trajectory name: <model> or <model>-traj<seed>")
    args = parser.parse_args()
    config = load_config(args.config)
    layout = Layout(config["experiment"])
    model, seed = parse_trajectory_name(args.trajectory, config["seed"])
    steps = sorted(config["models"][model]["steps"])
    rows = []
    for step in steps:
        folder = layout.pretrained_checkpoint(args.trajectory, step)
        wa, wb = (load_file(root / folder / "model.safetensors") for root in (args.a, args.b))
        diff = max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa)
        norm = sum((wa[k].double() - wb[k].double()).pow(2).sum().item() for k in wa) ** 0.5
        scale = sum(wa[k].double().pow(2).sum().item() for k in wa) ** 0.5
        loss = [
            pd.read_parquet(root / layout.pretrain_loss(args.trajectory, step)).loss.iloc[-1]
            for root in (args.a, args.b)
        ]
        rows.append({"step": step, "max |dw|": diff, "|dw| / |w|": norm / scale, "loss a": loss[0], "loss b": loss[1]})
    print(f"{args.a} vs {args.b}, trajectory {args.trajectory} (torch {torch.__version__})")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    losses = [
        pd.concat([pd.read_parquet(root / layout.pretrain_loss(args.trajectory, s)) for s in steps])
        .set_index("step")
        .loss.sort_index()
        for root in (args.a, args.b)
    ]
    relative = ((losses[0] - losses[1]).abs() / losses[0].abs()).dropna()
    for bound in (1e-6, 1e-4, 1e-2):
        above = relative[relative > bound]
        print(f"first step whose training loss differs by more than {bound:g} (relative): "
              f"{above.index[0] if len(above) else 'none'}")  # fmt: skip
    ka, kb = (root / layout.table("entropy.parquet") for root in (args.a, args.b))
    if ka.is_file() and kb.is_file():
        whole = [
            pd.read_parquet(k)
            .query("layer.isna() and variant == 'original' and model == @model and trajectory == @seed")
            .pivot(index="step", columns="metric", values="value")
            for k in (ka, kb)
        ]
        print("whole-model metrics, a - b:")
        print((whole[0] - whole[1]).to_string(float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()

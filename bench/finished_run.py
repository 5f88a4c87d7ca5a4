"""A finished DAG's folder as the benchmarks read it: its config's plan and layout, and the last checkpoint of its
first trajectory (what they time on), with torch at the jobs' thread count."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from kentropy.core.config import load_config
from kentropy.core.layout import Layout
from kentropy.core.plan import Plan


def arguments(doc: str) -> argparse.ArgumentParser:
    """A benchmark's parser (its description: the first paragraph of ``doc``) with ``--config`` and ``--root``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--root", default=".", help="the folder the DAG ran in")
    return parser


@dataclass(frozen=True)
class FinishedRun:
    config: dict
    plan: Plan
    layout: Layout
    root: Path
    checkpoint: Path  #: the last checkpoint of the first trajectory

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> FinishedRun:
        """The run ``args.config`` describes, in ``args.root``; sets torch's threads to its jobs' count."""
        config = load_config(args.config)
        plan, layout, root = Plan.from_config(config), Layout(config["experiment"]), Path(args.root)
        torch.set_num_threads(plan.speed.threads)
        trajectory = next(iter(plan.trajectories))
        spec = config["models"][plan.trajectories[trajectory].model]
        checkpoint = root / layout.checkpoint(trajectory, spec, spec["steps"][-1])
        return cls(config, plan, layout, root, checkpoint)

    def probe_sequences(self) -> tuple[list[tuple[list[int], int]], int]:
        """What one probe scoring runs through the model, built as ``score_encoded`` builds it (keep the two
        alike): each distinct ``(token ids, target tokens)`` of the probes' two encodings once, in file order;
        and the tokenizer's padding id."""
        from transformers import AutoTokenizer

        from kentropy.evaluation.probes import encode_probes
        from kentropy.sources.fictional_knowledge import probe_files

        probes = probe_files(*(self.root / self.layout.knowledge(split) for split in ("paraphrase", "once")))
        tokenizer = AutoTokenizer.from_pretrained(self.checkpoint)
        encoded = encode_probes(tokenizer, probes, self.plan.evaluation.probe_max_length)
        distinct = dict.fromkeys((tuple(ids), n) for ids, n in encoded.per_token + encoded.released)
        return [(list(ids), n) for ids, n in distinct], encoded.pad_id

"""Evaluate one model state: the probes of the injected knowledge (kentropy.evaluation.probes) and the downstream
benchmarks (kentropy.evaluation.benchmarks), with the model loaded once.

Two callers, one code: the ``evaluate`` rule (each checkpoint before training) and the training job,
which evaluates the model it has just saved (``kentropy.pipeline.continual_job``), loaded back from disk exactly as the
``evaluate`` rule would load it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..core.layout import model_keys
from ..core.plan import EvaluationSpec, Spec, Speed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation(Spec):
    """One evaluation job: the settings (kentropy.core.plan.EvaluationSpec), the batch sizes it runs with, its
    files and key columns. Plain data, so a training job's launcher passes it on the command line without
    importing torch; the training job also scores its retention probes with it."""

    spec: EvaluationSpec
    probe_batch_size: int  #: probes per forward pass (speed only)
    downstream_batch_size: int | str  #: lm-eval batch size, or auto (speed only)
    paraphrase: str  #: fictional-knowledge file of the paraphrase split
    once: str  #: fictional-knowledge file of the once split
    benchmarks: str  #: folder written by the fetch_benchmarks rule (``tasks.json``, local task data)
    keys: dict  #: key columns of both tables: model, step, variant, state
    probes_out: str  #: Parquet output: one row per probe with both scores
    downstream_out: str  #: Parquet output: kentropy.evaluation.benchmarks.RESULT_COLUMNS and PROVENANCE_COLUMNS
    samples_out: str | None = None  #: lm-eval's per-sample outputs (JSON lines; ``downstream.log_samples``)

    def probe_table(self):
        """One row per probe of both fictional-knowledge files (kentropy.sources.fictional_knowledge.probe_table):
        what the evaluation scores, and what a training job's retention curve scores during training."""
        from ..sources.fictional_knowledge import probe_files

        return probe_files(self.paraphrase, self.once)

    @classmethod
    def from_job(cls, job, state: str) -> Evaluation:
        """The evaluation of model state ``state`` by a Snakemake job (its ``snakemake`` object): inputs
        ``paraphrase``, ``once``, ``benchmarks``; param ``evaluation`` (the workflow's ``EVALUATION``);
        outputs ``probes``, ``downstream``. Batch sizes and ``log_samples`` come from the config (``Speed``): not
        params. Per-sample outputs go beside the job's log."""
        speed, wc = Speed.from_config(job.config), job.wildcards
        return cls(
            spec=EvaluationSpec.from_dict(job.params.evaluation),
            probe_batch_size=speed.probe_batch_size,
            downstream_batch_size=speed.downstream_batch_size,
            paraphrase=job.input.paraphrase,
            once=job.input.once,
            benchmarks=job.input.benchmarks,
            keys={**model_keys(wc.model, job.config["seed"]), "step": wc.step, "variant": wc.variant, "state": state},
            probes_out=job.output.probes,
            downstream_out=job.output.downstream,
            samples_out=str(Path(job.log[0]).with_suffix(".samples.jsonl")) if speed.log_samples else None,
        )


def evaluate_state(model_dir: str, evaluation: Evaluation, threads: int | None = None) -> None:
    """Load the ``save_pretrained`` model in ``model_dir`` (fp32, on the GPU when there is one), score the
    probes and the benchmarks, and write both tables; the log's ``time:`` line has the three phases' seconds."""
    import torch
    from transformers import AutoTokenizer

    from ..core.io import write_table
    from ..core.layout import with_keys
    from ..core.logs import Phases
    from ..sources.architectures import load_causal_lm
    from .benchmarks import DOWNSTREAM_MISSING, evaluate
    from .probes import probe_score_table

    phases = Phases()
    if threads:
        torch.set_num_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_causal_lm(model_dir, dtype=torch.float32).to(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    phases.lap("load")

    scores = probe_score_table(
        model,
        tokenizer,
        evaluation.probe_table(),
        evaluation.probe_batch_size,
        evaluation.spec.probe_max_length,
        evaluation.spec.released,
    )
    table = with_keys(scores, **evaluation.keys)
    write_table(table, evaluation.probes_out)
    means = table.per_token.mean(), table.released.mean()
    log.info("%d probes, mean score: per_token %.4f, released %.4f", len(table), *means)
    phases.lap("probes")

    cfg = evaluation.spec.downstream
    benchmarks = json.loads((Path(evaluation.benchmarks) / "tasks.json").read_text())
    table = evaluate(
        model,
        tokenizer,
        benchmarks["tasks"],
        evaluation.downstream_batch_size,
        source=cfg.source,
        data_dir=evaluation.benchmarks,
        num_fewshot=cfg.num_fewshot,
        limit=cfg.limit,
        samples_out=evaluation.samples_out,
    )
    table = with_keys(table, **evaluation.keys)
    write_table(table, evaluation.downstream_out, missing=DOWNSTREAM_MISSING)
    log.info("mean %s over %d tasks: %.2f%%", "/".join(sorted(set(table.metric))), len(table), table.value.mean())
    phases.lap("downstream")
    log.info("time: %s", phases)

"""The training job: continual training of one checkpoint on one stream (kentropy.training.continual), then the
evaluation of the model it saved (kentropy.evaluation.model_state, the evaluate rule's code), so that the trainer
itself never imports the benchmark harness.

``TrainingJob`` is everything one job needs, typed. On one process the workflow script hands it to ``run_job``
directly; with several processes (kentropy.pipeline.launch) it crosses the command line once, as JSON
(``python -m kentropy.cli.train --job JSON``), the only place it becomes text."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..core.logs import Phases
from ..core.plan import Run, Spec
from ..evaluation.model_state import Evaluation
from ..training.monitor import Monitor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingJob(Spec):
    """One continual-training job: its files, the run it trains, the evaluation that scores its probes during
    training and the trained model after it, and the settings that change speed only."""

    model: str  #: save_pretrained folder of the starting checkpoint
    stream: str  #: stream .npy written by train_stream
    run: Run
    out: str  #: folder for the trained model (HF format)
    loss: str  #: Parquet loss/lr log
    work_dir: str  #: DeepSpeed checkpoints, for resuming after a kill
    retention: str | None  #: Parquet output of the retention curve (None: not scored)
    evaluation: Evaluation | None  #: scores the trained model, and the probes during training (None: neither)
    threads: int | None = None  #: torch CPU threads (speed only)
    compile: bool = False  #: torch.compile the model (speed only)
    checkpointing: bool = False  #: activation checkpointing (memory only)
    monitor: Monitor | None = None  #: live logs (TensorBoard, CSV, W&B)

    def __post_init__(self):
        if self.retention is not None and self.evaluation is None:
            raise ValueError("a retention curve needs the evaluation (its probes and how to score them)")


def run_job(job: TrainingJob) -> None:
    """Train, then (rank 0) evaluate the saved model, loaded back as the evaluate rule loads a checkpoint."""
    import torch
    import torch.distributed as dist

    from ..evaluation.model_state import evaluate_state
    from ..training.continual import Retention, train

    if job.threads:
        torch.set_num_threads(job.threads)
    evaluation, run, retention = job.evaluation, job.run, None
    if job.retention is not None:  # the same probes and settings score the trained model afterwards
        retention = Retention(evaluation.probe_table(), run.retention_steps, evaluation.probe_batch_size,
                              evaluation.spec.probe_max_length, evaluation.spec.released, job.retention)  # fmt: skip
    table = train(job.model, job.stream, run, job.out, job.loss, job.work_dir, retention, job.compile, job.monitor,
                  job.checkpointing)  # fmt: skip
    log.info("%d steps, final loss %.4f", len(table), table.loss.iloc[-1])
    rank = dist.get_rank()
    dist.destroy_process_group()  # training is over: what follows is one process's work
    if evaluation is not None and rank == 0:  # one process scores, as the evaluate rule's job would
        phases = Phases()
        evaluate_state(job.out, evaluation)
        phases.lap("evaluation")
        log.info("time: %s", phases)

"""The training job: continual training of one checkpoint on one stream (kentropy.training.continual), then the
evaluation of the model it saved (kentropy.evaluation.model_state, the evaluate rule's code), so that the trainer
itself never imports the benchmark harness. The program every rank runs (``python -m
kentropy.pipeline.continual_job``, started by kentropy.pipeline.launch with one process per GPU, or called in the
job's own interpreter on one process); ``--help`` lists its options."""

from __future__ import annotations

import argparse
import logging
import sys

import torch

from ..core.plan import Run
from ..evaluation.model_state import Evaluation, evaluate_state
from ..training.continual import Retention, train
from ..training.monitor import Monitor

log = logging.getLogger(__name__)


def retention_of(evaluation: Evaluation, run: Run, path: str) -> Retention:
    """The retention curve of ``run``, scored with the probes and settings of the job's evaluation: the same
    files and settings score the trained model afterwards."""
    spec = evaluation.spec
    return Retention(
        evaluation.probe_table(),
        run.retention_steps,
        evaluation.probe_batch_size,
        spec.probe_max_length,
        spec.released,
        path,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Continual training of one checkpoint on one stream (DeepSpeed).")
    parser.add_argument("--model", required=True, help="save_pretrained folder of the starting checkpoint")
    parser.add_argument("--stream", required=True, help="stream .npy written by train_stream")
    # Not "--run": torchrun would take it for an abbreviation of its own --run-path.
    parser.add_argument("--run-config", required=True, help="the run: JSON of kentropy.core.plan.Run")
    parser.add_argument("--out", required=True, help="folder for the trained model (HF format)")
    parser.add_argument("--loss", required=True, help="Parquet loss/lr log")
    parser.add_argument("--work-dir", required=True, help="DeepSpeed checkpoints, for resuming after a kill")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--evaluation",
        help="JSON of kentropy.evaluation.model_state.Evaluation: its probes are scored during training "
        "(--retention), and the trained model is evaluated (rank 0) when done",
    )
    parser.add_argument("--retention", help="Parquet output of the retention curve (needs --evaluation)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (speed only)")
    parser.add_argument(
        "--monitor", help="JSON of kentropy.training.monitor.Monitor: live logs (TensorBoard, CSV, W&B)"
    )
    args = parser.parse_args(argv)
    if args.retention and not args.evaluation:
        parser.error("--retention needs --evaluation (the probes and how to score them)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    run = Run.from_json(args.run_config)
    evaluation = Evaluation.from_json(args.evaluation) if args.evaluation else None
    retention = retention_of(evaluation, run, args.retention) if args.retention else None
    monitor = Monitor.from_json(args.monitor) if args.monitor else None
    table = train(args.model, args.stream, run, args.out, args.loss, args.work_dir, retention, args.compile, monitor)
    log.info("%d steps, final loss %.4f", len(table), table.loss.iloc[-1])
    import torch.distributed as dist

    rank = dist.get_rank()
    dist.destroy_process_group()  # training is over: what follows is one process's work
    if evaluation is not None and rank == 0:
        # The saved model, loaded back as the evaluate rule loads a checkpoint (the training engine is gone),
        # scored by one process as the evaluate rule's single-GPU job would; the other ranks are done.
        evaluate_state(args.out, evaluation)


if __name__ == "__main__":
    main()

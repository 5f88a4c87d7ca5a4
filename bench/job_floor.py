"""Where the DAG's training and measuring jobs spend their time, against this machine's floor, in one run.

The floor, measured here: fp32 matrix products at the model's shapes (GFLOP/s), and a plain PyTorch training
loop on one of the run's own checkpoints (AdamW as the trainer builds it, the run's batch, micro-batch and
sequence length, gradient clipping; no DeepSpeed, no retention, no evaluation), at the jobs' thread count.
The jobs, from a finished run's folder: each job's wall seconds (its benchmark file) split into the phases its
log's ``time:`` lines record and the rest (interpreter start-up, imports, Snakemake's script preamble), each as a
multiple of its floor. ``continual_train``: setup (process group, loading, engine, probes, resume decision),
train, retention scoring, resumable checkpoints, writing the model, evaluation of the trained model; its floor
is its steps at the plain loop's rate. ``evaluate`` (load, probes, downstream) and ``measure_facts`` (load, QA,
specialization): their floor is their own forward passes, the phases after loading. For ``continual_train`` it
also times one probe scoring's transformer passes, bare: with the run's retention scorings and the trained
model's, the part of a training job that is science, not overhead, yet not training either.

    python bench/job_floor.py                                   # the default config, after its DAG ran
    python bench/job_floor.py --config tests/config/e2e.yaml --root <a finished e2e folder>
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from finished_run import FinishedRun, arguments

from kentropy.core.layout import Layout


def matmul_gflops(rows: int, inner: int, cols: int, seconds: float = 1.0) -> float:
    """fp32 ``(rows x inner) @ (inner x cols)`` products per second, in GFLOP/s."""
    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    for _ in range(3):
        a @ b
    n, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        a @ b
        n += 1
    return 2 * rows * inner * cols * n / (time.perf_counter() - began) / 1e9


def plain_steps_per_s(checkpoint: str, run, steps: int = 30, rounds: int = 3) -> float:
    """Optimizer steps per second of a plain loop on ``checkpoint`` with ``run``'s batch shape: the median of
    ``rounds`` timings of ``steps`` steps each (one timing of a second or so moved by 8% between runs)."""
    from transformers import AutoModelForCausalLM

    from kentropy.training.schedule import adamw

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    model.config.use_cache = False
    model.train()
    optimizer = adamw(model, run.optimizer)
    batch, micro, seq = run.stream.batch_size, run.parallelism.micro_batch_size, run.stream.seq_len
    rng = np.random.default_rng(0)
    tokens = torch.from_numpy(rng.integers(0, model.config.vocab_size, (rounds * steps + 3, batch, seq)))

    def step(rows):
        for start in range(0, batch, micro):
            chunk = rows[start : start + micro]
            (model(input_ids=chunk, labels=chunk).loss * micro / batch).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), run.optimizer.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for rows in tokens[:3]:
        step(rows)
    rates = []
    for first in range(3, len(tokens), steps):
        began = time.perf_counter()
        for rows in tokens[first : first + steps]:
            step(rows)
        rates.append(steps / (time.perf_counter() - began))
    return statistics.median(rates)


def probe_pass_seconds(checkpoint: str, sequences: list, pad_id: int, batch_size: int, rounds: int = 3) -> tuple:
    """One probe scoring's transformer passes, bare: each of ``sequences`` once, in the file-order, right-padded
    batches that keep its scores (``score_encoded``), without the output layer's few rows or any table. The
    median of ``rounds`` timings, the number of sequences and their padded tokens."""
    from kentropy.sources.architectures import load_causal_lm
    from kentropy.sources.corpora import padded_batches

    model = load_causal_lm(checkpoint)  # as the jobs load it
    batches = list(padded_batches([ids for ids, _ in sequences], batch_size, pad_id))
    timings = []
    with torch.no_grad():
        for _ in range(rounds + 1):  # the first warms up
            began = time.perf_counter()
            for batch in batches:
                model.base_model(**batch)
            timings.append(time.perf_counter() - began)
    return statistics.median(timings[1:]), len(sequences), sum(b["input_ids"].numel() for b in batches)


def job_phases(log: Path) -> dict[str, float]:
    """The seconds of each phase a job's log records (its ``time:`` lines)."""
    seconds = {}
    for line in log.read_text(errors="replace").splitlines():
        if " time: " not in line:
            continue
        for part in line.split(" time: ", 1)[1].split(", "):
            name, value, _ = part.split(" ")
            seconds[name] = seconds.get(name, 0.0) + float(value)
    return seconds


def wall_seconds(tsv: Path) -> float:
    with open(tsv) as f:
        return float(list(csv.DictReader(f, delimiter="\t"))[-1]["s"])


#: Each job kind's logged phases (in its ``time:`` lines), and those of them that are its floor: for a training
#: job, its steps at the plain loop's rate (computed here instead); for a measuring job, its own forward passes.
KINDS = {
    "continual_train": (("setup", "train", "retention", "checkpoints", "write", "evaluation"), ()),
    "evaluate": (("load", "probes", "downstream"), ("probes", "downstream")),
    "measure_facts": (("load", "qa", "specialization"), ("qa", "specialization")),
}


def jobs(root: Path, layout: Layout, kind: str, floor_of) -> list[dict]:
    """Every ``kind`` job of the run in ``root`` with a benchmark file and a ``time:`` line: its wall seconds,
    its phases, the rest (interpreter start, imports, Snakemake's preamble) and its floor."""
    parts, compute = KINDS[kind]
    rows, logs = [], root / layout.logs(kind)
    for log in sorted(logs.glob("**/*.log")):
        key = log.relative_to(logs).with_suffix("")
        tsv = root / layout.benchmark(kind, *key.parts)
        logged = job_phases(log)
        if not tsv.is_file() or not set(parts) & set(logged):
            continue
        phases = {part: logged.get(part, 0.0) for part in parts}
        wall = wall_seconds(tsv)
        floor = floor_of(key) if not compute else sum(phases[part] for part in compute)
        rows.append({"wall": wall, **phases, "rest": wall - sum(phases.values()), "floor": floor})
    return rows


def main() -> None:
    done = FinishedRun.from_args(arguments(__doc__).parse_args())
    plan, layout, root, checkpoint = done.plan, done.layout, done.root, done.checkpoint
    run = plan.runs[plan.baseline]
    hidden = json.loads((checkpoint / "config.json").read_text())
    tokens = run.parallelism.micro_batch_size * run.stream.seq_len
    gflops = matmul_gflops(tokens, hidden["hidden_size"], hidden["intermediate_size"])
    rate = plain_steps_per_s(str(checkpoint), run)
    scoring = probe_pass_seconds(str(checkpoint), *done.probe_sequences(), plan.speed.probe_batch_size)

    print(f"threads {plan.speed.threads}; CPU: {cpu_model()}; torch {torch.__version__}")
    print(f"matmul {tokens} x {hidden['hidden_size']} x {hidden['intermediate_size']} fp32: {gflops:.1f} GFLOP/s")
    print(f"plain loop on {checkpoint}: {rate:.2f} steps/s (batch {run.stream.batch_size}, micro "
          f"{run.parallelism.micro_batch_size}, seq {run.stream.seq_len})")  # fmt: skip
    for kind in KINDS:
        rows = jobs(root, layout, kind, lambda key: plan.runs[key.parts[-1]].total_steps / rate)
        if not rows:
            print(f"\nno {kind} job with a benchmark file and a time: line under {root}")
            continue
        floor = statistics.median(r["floor"] for r in rows)
        what = "its steps at the plain loop's rate" if kind == "continual_train" else "its own forward passes"
        print(f"\n{kind}: {len(rows)} jobs, median seconds and multiples of the floor ({what}):\n")
        print("| part | s a job | x floor |\n|---|---|---|")
        for part in ("wall", *KINDS[kind][0], "rest"):
            value = statistics.median(r[part] for r in rows)
            print(f"| {part} | {value:.2f} | {value / floor:.2f} |")
        print(f"| floor | {floor:.2f} | 1.00 |")
        walls, floors = sum(r["wall"] for r in rows), sum(r["floor"] for r in rows)
        print(f"all {len(rows)}: {walls:.0f} job-seconds, {floors:.0f} at the floor ({walls / floors:.2f}x)")
        if kind == "continual_train":
            required_passes(run, rate, scoring, plan.speed.probe_batch_size)


def required_passes(run, rate: float, scoring: tuple, batch_size: int) -> None:
    """What a training job's own science adds to its floor before any overhead: a probe scoring after each of
    the run's retention steps and one of the trained model (its evaluation; lm-eval's passes not counted)."""
    seconds, sequences, tokens = scoring
    scorings = len(run.retention_steps) + 1
    train = run.total_steps / rate
    bound = train + scorings * seconds
    print(
        f"\nits probe passes, bare: {seconds:.3f} s a scoring ({sequences} sequences, {tokens:,} padded tokens, "
        f"batch {batch_size}), {scorings} scorings = {scorings * seconds:.2f} s; with its training at the plain "
        f"loop's rate ({train:.2f} s): {bound:.2f} s = {bound / train:.2f}x the floor before any start-up, "
        f"loading, engine, writing, lm-eval or Snakemake (1.25x leaves {1.25 * train - bound:.2f} s for them)"
    )


def cpu_model() -> str:
    """The CPU as ``lscpu`` names it, with its family and model and the kernels torch picks: one model name
    ("AMD EPYC") covers several generations, which differ in speed and in the vector instructions torch uses."""
    fields = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", os.uname().machine)
    return (
        f"{name} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}; torch's kernels "
        f"{torch.backends.cpu.get_cpu_capability()})"
    )


if __name__ == "__main__":
    main()

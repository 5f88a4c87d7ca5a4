"""Continual training with DeepSpeed on CPU: the config, the launch command, and kill-and-resume."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kentropy.cli.train import program
from kentropy.core.plan import (
    Downstream,
    EvaluationSpec,
    Optimizer,
    Parallelism,
    ReleasedEvaluator,
    Run,
    Schedule,
    Stream,
)
from kentropy.core.vocabulary import PROBE_COLUMNS
from kentropy.evaluation.benchmarks import write_local_tasks
from kentropy.evaluation.model_state import Evaluation, evaluate_state
from kentropy.pipeline.continual_job import TrainingJob
from kentropy.pipeline.launch import launch_command
from kentropy.sources.corpora import pack_blocks
from kentropy.sources.fictional_knowledge import probe_table
from kentropy.sources.world import fictional_record, multiple_choice_questions, new_domain_corpus
from kentropy.training.continual import deepspeed_config
from kentropy.training.streams import injection_schedule, write_stream

from .conftest import tiny_model, tiny_olmo


def tiny_olmo_model():
    return tiny_model("olmo", dtype=torch.float32)


RUN = Run(
    name="run",
    run="run",
    seed=0,
    # the retention curve is scored after steps 39, 59 and 60
    stream=Stream(
        corpus="new_domain", batch_size=8, seq_len=32, epochs=1, steps_per_epoch=60, inject_interval=20, n_injections=3
    ),  # fmt: skip
    optimizer=Optimizer(lr=3e-3, weight_decay=0.1, grad_clip=1.0),
    schedule=Schedule(total_steps=60, warmup_fraction=0.05, alpha_f=0.1),
    parallelism=Parallelism(micro_batch_size=4, zero_stage=1),
    save_interval=5,
)


def shorter(run: Run, steps: int, lr: float | None = None, zero_stage: int | None = None) -> Run:
    """``run`` with ``steps`` steps (one epoch), and another peak ``lr`` or ZeRO stage."""
    stream = replace(run.stream, steps_per_epoch=steps, inject_interval=min(run.stream.inject_interval, steps))
    optimizer = run.optimizer if lr is None else replace(run.optimizer, lr=lr)
    parallelism = run.parallelism if zero_stage is None else replace(run.parallelism, zero_stage=zero_stage)
    schedule = replace(run.schedule, total_steps=steps)
    return replace(run, stream=stream, optimizer=optimizer, schedule=schedule, parallelism=parallelism)


def test_deepspeed_config_accumulates_to_the_global_batch():
    cfg = deepspeed_config(RUN, world_size=2, bf16=True)
    assert (cfg["train_batch_size"], cfg["train_micro_batch_size_per_gpu"], cfg["gradient_accumulation_steps"]) == (
        8,
        4,
        1,
    )
    # Mixed precision keeps fp32 weights (the master weights) and autocasts the forward, as the released runs.
    assert cfg["torch_autocast"] == {"enabled": True, "dtype": "bfloat16", "lower_precision_safe_modules": []}
    assert "bf16" not in cfg and cfg["gradient_clipping"] == 1.0
    assert deepspeed_config(RUN, world_size=1, bf16=False)["gradient_accumulation_steps"] == 2
    with pytest.raises(ValueError, match="batch_size 8 is not a multiple of micro_batch_size 4 x 3 processes"):
        deepspeed_config(RUN, world_size=3, bf16=False)


def test_deepspeed_compiles_no_shared_memory_collective():
    """Training reduces through torch.distributed, so DeepSpeed's CPU shared-memory op is never compiled: the name
    is DeepSpeed's (this fails when DeepSpeed renames it), and once marked, its backend's builder returns nothing."""
    from deepspeed.comm.torch import build_shm_op
    from deepspeed.ops.op_builder.cpu.comm import ShareMemCommBuilder

    from kentropy.training.continual import SHM_OP, _without_shared_memory_op

    assert ShareMemCommBuilder.NAME == SHM_OP
    _without_shared_memory_op()
    assert build_shm_op() is None


def test_launch_command_runs_one_process_per_gpu():
    python = "/home/me/my project/.venv/bin/python"  # a space: one argument, never split
    assert launch_command(0, program(python)) == [python, "-m", "kentropy.cli.train"]
    assert launch_command(1, program(python)) == [python, "-m", "kentropy.cli.train"]
    for n in (4, 8):
        assert launch_command(n, program(python)) == [
            *(python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n)),
            *("-m", "kentropy.cli.train"),
        ]


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """A tiny checkpoint (with tokenizer) and a stream with injected knowledge."""
    root = tmp_path_factory.mktemp("continual")
    world, tokenizer, model = tiny_olmo(root, n_fictional=4)
    model.save_pretrained(root / "ckpt")
    tokenizer.save_pretrained(root / "ckpt")
    records = [fictional_record(p, world.country_of[p.city], i) for i, p in enumerate(world.fictional)]
    blocks = pack_blocks(new_domain_corpus(400, 3), tokenizer, 32, n_blocks=RUN.stream.batch_size * RUN.total_steps)
    (root / "paraphrase.json").write_text(json.dumps(records[:2]))
    (root / "once.json").write_text(json.dumps(records[2:]))
    schedule = injection_schedule(records[:2], records[2:], 6, 2, RUN.stream.batch_size, RUN.total_steps)
    write_stream(blocks, schedule, tokenizer, RUN.stream.batch_size, RUN.total_steps, 0, root / "stream.npy")
    (root / "questions.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in multiple_choice_questions(world, 12, 1))
    )
    tasks = write_local_tasks(root / "questions.jsonl", root / "benchmarks")
    (root / "benchmarks" / "tasks.json").write_text(json.dumps({"tasks": tasks, "source": "generated"}))
    return root


def evaluation(root, name) -> Evaluation:
    """What the workflow asks a training job to evaluate (Evaluation.from_job), for the run ``name``."""
    return Evaluation(
        spec=EvaluationSpec(
            probe_max_length=32,
            released=ReleasedEvaluator(batch_size=16, world_size=4),
            downstream=Downstream(source="generated", tasks=None, num_fewshot=0, limit=None),
        ),
        paraphrase=str(root / "paraphrase.json"),
        once=str(root / "once.json"),
        benchmarks=str(root / "benchmarks"),
        probe_batch_size=4,
        downstream_batch_size=8,
        keys={"model": "tiny", "step": "10", "variant": "original", "state": name},
        probes_out=str(root / name / "probes.parquet"),
        downstream_out=str(root / name / "downstream.parquet"),
    )


def train_command(root, name, retention=False, run=RUN, model=None, checkpointing=False, python=(sys.executable,)):
    """The training command line (``python``: the interpreter command, ``warm_python`` for a warm one); with
    ``retention``, the probes are scored during training and the trained model is evaluated (both read the job's
    evaluation)."""
    job = TrainingJob(
        model=str(model or root / "ckpt"),
        stream=str(root / "stream.npy"),
        run=run,
        out=str(root / name / "model"),
        loss=str(root / name / "loss.parquet"),
        work_dir=str(root / name / "work"),
        retention=str(root / name / "retention.parquet") if retention else None,
        evaluation=evaluation(root, name) if retention else None,
        threads=1,
        checkpointing=checkpointing,
    )
    return [*python, "-m", "kentropy.cli.train", "--job", job.to_json()]


def trained_once(root: Path, name: str, command: list[str]) -> Path:
    """``root / name`` after ``command`` trained it (once per module, its stderr in ``train.log``): a reference
    run that several tests compare with."""
    if not (root / name / "loss.parquet").exists():
        log = subprocess.run(command, check=True, capture_output=True, text=True).stderr
        (root / name / "train.log").write_text(log)
    return root / name


def uninterrupted(root, python):
    """The reference run: the whole of ``RUN``, its retention scored and its trained model evaluated."""
    return trained_once(root, "whole", train_command(root, "whole", retention=True, python=python))


#: The changed run of the stale-state test: ``RUN`` shortened to 20 steps, at another peak lr.
NEW_LR = shorter(RUN, 20, lr=2e-3)


def fresh_at_new_lr(root, python):
    """``NEW_LR`` trained from the start, uninterrupted (ZeRO-1)."""
    return trained_once(root, "fresh-new-lr", train_command(root, "fresh-new-lr", run=NEW_LR, python=python))


def kill_after_first_save(command: list[str], work: Path, env: dict | None = None) -> None:
    """Start a training process and SIGKILL it as soon as its first DeepSpeed checkpoint exists."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (work / "latest").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (work / "latest").exists() and not (work.parent / "model").exists(), "the run was not killed midway"


def test_killed_run_resumes_to_the_same_result(start, warm_python):
    """A training process SIGKILLed after its first checkpoint; the same command again (warm: its start-up is not
    what this tests) resumes and ends where the uninterrupted run ends."""
    uninterrupted(start, warm_python)
    kill_after_first_save(train_command(start, "killed", retention=True), start / "killed" / "work")
    resumed = subprocess.run(
        train_command(start, "killed", retention=True, python=warm_python), check=True, capture_output=True, text=True
    )
    assert "resumed from" in resumed.stderr

    retention = pd.read_parquet(start / "killed" / "retention.parquet")
    knowledge = {split: json.loads((start / f"{split}.json").read_text()) for split in ("paraphrase", "once")}
    assert list(retention.columns) == PROBE_COLUMNS
    assert sorted(set(retention.step)) == list(RUN.retention_steps) == [39, 59, 60]
    assert len(retention) == 3 * len(probe_table(knowledge))  # every probe at every scoring step
    pd.testing.assert_frame_equal(retention, pd.read_parquet(start / "whole" / "retention.parquet"), rtol=1e-5)
    whole = pd.read_parquet(start / "whole" / "loss.parquet")
    killed = pd.read_parquet(start / "killed" / "loss.parquet")
    assert list(killed.step) == list(range(1, RUN.total_steps + 1))
    np.testing.assert_allclose(killed.loss, whole.loss, rtol=1e-6)
    assert whole.loss.iloc[-1] < whole.loss.iloc[0]
    from safetensors.torch import load_file

    a, b = (
        load_file(start / "whole" / "model" / "model.safetensors"),
        load_file(start / "killed" / "model" / "model.safetensors"),
    )
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    assert not (start / "killed" / "work").exists(), "DeepSpeed checkpoints are removed after success"


def test_learning_rate_log_follows_the_schedule(start, warm_python):
    from kentropy.training.schedule import warmup_cosine

    log = pd.read_parquet(uninterrupted(start, warm_python) / "loss.parquet")
    lr, alpha_f = RUN.optimizer.lr, RUN.schedule.alpha_f
    want = [lr * warmup_cosine(s, RUN.schedule) for s in log.step]
    np.testing.assert_allclose(log.lr, want)
    # OLMo's CosWithWarmup at its 1-based steps: warm-up from 10% of the peak over round(0.05 x 60) = 3 steps,
    # cosine to alpha_f x lr at the last step.
    assert log.lr.iloc[0] == pytest.approx(lr * (0.1 + 0.9 * 1 / 3))
    assert log.lr.iloc[3] == pytest.approx(lr * (alpha_f + (1 - alpha_f) * 0.5 * (1 + np.cos(np.pi * 1 / 57))))
    assert log.lr.iloc[-1] == pytest.approx(lr * alpha_f)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_zero_learning_rate_saves_the_checkpoint_bit_for_bit(start, dtype, warm_python):
    """lr 0: fp32 master weights start from the checkpoint's own values and the model is saved back in the
    checkpoint's dtype, so nothing changes, not one bit (a bf16 checkpoint stays bf16)."""

    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ckpt = start / f"ckpt-{str(dtype).split('.')[-1]}"
    AutoModelForCausalLM.from_pretrained(start / "ckpt", dtype=dtype).save_pretrained(ckpt)
    AutoTokenizer.from_pretrained(start / "ckpt").save_pretrained(ckpt)
    cmd = train_command(start, f"lr0-{ckpt.name}", run=shorter(RUN, 8, lr=0.0), model=ckpt, python=warm_python)
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    before, after = (
        load_file(ckpt / "model.safetensors"),
        load_file(start / f"lr0-{ckpt.name}" / "model" / "model.safetensors"),
    )
    assert before.keys() == after.keys()
    for name in before:
        assert after[name].dtype == dtype and torch.equal(before[name], after[name]), name


def test_adamw_as_olmo_builds_it():
    from kentropy.training.schedule import adamw

    model = tiny_olmo_model()
    optimizer = adamw(model, Optimizer(lr=1e-3, weight_decay=0.1, grad_clip=1.0))
    decay, rest = optimizer.param_groups
    assert optimizer.defaults["eps"] == 1e-5 and optimizer.defaults["betas"] == (0.9, 0.95)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    # Linear weights decay (an untied output layer is a Linear in OLMo too); norms and embeddings do not.
    assert all(n.endswith("proj.weight") or n == "lm_head.weight" for n in (names[id(p)] for p in decay["params"]))
    assert "model.embed_tokens.weight" in {names[id(p)] for p in rest["params"]}  # embeddings: no decay


def test_zero3_builds_partitioned_and_trains_the_same_model_as_zero1(start, warm_python):
    """ZeRO-3 builds the model in its shards (never the whole fp32 model on a rank) and, with activation
    checkpointing (memory only), ends where ZeRO-1, which builds it whole and keeps every activation, ends."""
    from safetensors.torch import load_file

    zero1 = fresh_at_new_lr(start, warm_python)  # ZeRO-1 (the default), every activation kept
    zero3 = train_command(start, "zero3", run=replace(NEW_LR, parallelism=replace(NEW_LR.parallelism, zero_stage=3)),
                          checkpointing=True, python=warm_python)  # fmt: skip
    log = subprocess.run(zero3, check=True, capture_output=True, text=True).stderr
    assert "ZeRO-3: built partitioned, rank 0 holds" in log
    assert "built partitioned" not in (zero1 / "train.log").read_text()
    np.testing.assert_allclose(
        pd.read_parquet(start / "zero3" / "loss.parquet").loss, pd.read_parquet(zero1 / "loss.parquet").loss, rtol=1e-5
    )
    a = load_file(zero1 / "model" / "model.safetensors")
    b = load_file(start / "zero3" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].shape == b[name].shape  # gathered, not the empty shards ZeRO-3 leaves in place
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6)


def test_two_processes_launched_like_a_two_gpu_job_train_the_same_model(start, warm_python):
    """The multi-GPU launch command, on CPU (gloo): two ranks, half the rows each, same result; rank 0 then
    evaluates the saved model exactly as the evaluate rule's code does."""
    from safetensors.torch import load_file

    done = evaluation(start, "ranks2")
    job = TrainingJob.from_json(train_command(start, "ranks2")[-1])
    cmd = [*launch_command(2, program()), "--job", replace(job, evaluation=done).to_json()]
    assert cmd[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cpu = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # two ranks need two GPUs; the CPU path needs none
    subprocess.run(cmd, check=True, capture_output=True, env=cpu)
    whole = uninterrupted(start, warm_python)  # one process; scoring retention changes no weight
    one, two = pd.read_parquet(whole / "loss.parquet"), pd.read_parquet(start / "ranks2" / "loss.parquet")
    np.testing.assert_allclose(two.loss, one.loss, rtol=1e-5)
    assert json.loads((start / "ranks2" / "model" / "continual.json").read_text())["world_size"] == 2
    a, b = (
        load_file(whole / "model" / "model.safetensors"),
        load_file(start / "ranks2" / "model" / "model.safetensors"),
    )
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6)
    again = evaluation(start, "again")
    evaluate_state(str(start / "ranks2" / "model"), again, threads=1)
    for got, want in ((done.probes_out, again.probes_out), (done.downstream_out, again.downstream_out)):
        got, want = pd.read_parquet(got), pd.read_parquet(want)
        assert set(got.state) == {"ranks2"} and len(got) > 0
        pd.testing.assert_frame_equal(got.drop(columns="state"), want.drop(columns="state"))


def test_a_changed_run_never_resumes_stale_state(start, warm_python):
    """Kill a run, change its lr, rerun in the same work dir: it starts fresh, says why, and ends exactly where
    an uninterrupted run at the new lr ends."""

    from safetensors.torch import load_file

    fresh = fresh_at_new_lr(start, warm_python)
    kill_after_first_save(train_command(start, "changed", run=shorter(RUN, 20)), start / "changed" / "work")
    rerun = subprocess.run(train_command(start, "changed", run=NEW_LR, python=warm_python), check=True,
                           capture_output=True, text=True)  # fmt: skip
    assert "not resuming from" in rerun.stderr and "lr 0.003 -> 0.002" in rerun.stderr
    assert "resumed from" not in rerun.stderr
    a = load_file(fresh / "model" / "model.safetensors")
    b = load_file(start / "changed" / "model" / "model.safetensors")
    for name in a:
        assert torch.equal(a[name], b[name]), name

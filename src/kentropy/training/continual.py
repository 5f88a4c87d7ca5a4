"""Continual training with DeepSpeed: a generic loop over the rows of a prepared stream.

One process per GPU (or one CPU process, gloo, fp32): the same code on a laptop and on the cluster.
Each optimizer step reads its ``batch_size`` consecutive stream rows; rank r takes its contiguous share,
cut into micro-batches (DeepSpeed accumulates). Every ``save_interval`` steps a DeepSpeed checkpoint
(model, optimizer, scheduler, loss log so far) is written; a restarted job resumes from the latest one,
and because data order and learning rate depend on the step only, it ends where an uninterrupted run
would. The training job (``python -m kentropy.pipeline.continual_job --help``) runs it, then evaluates.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..core.hashing import sha256
from ..core.integrity import checkpoint_dir, recorded, verify, write_checksums
from ..core.io import atomic_file, write_table
from ..core.layout import WEIGHT_SUFFIXES
from ..core.logs import Phases
from ..core.plan import ReleasedEvaluator, Run
from ..core.vocabulary import PROBE_COLUMNS
from ..evaluation.probes import EncodedProbes, encode_probes, score_encoded
from .monitor import Monitor, retention_events, step_events
from .ranks import process_group_environment
from .schedule import adamw, warmup_cosine

log = logging.getLogger(__name__)
FINGERPRINT = "fingerprint.json"  # in the work dir: the run its resumable state belongs to
LATEST = "latest"  # in the work dir: the tag of the last complete checkpoint (DeepSpeed's name, which it loads)


def deepspeed_config(run: Run, world_size: int, bf16: bool) -> dict:
    """The DeepSpeed config for ``run``; the optimizer and scheduler are passed as objects. ``bf16`` turns
    on the bf16 autocast forward (GPU)."""
    return {
        "train_batch_size": run.stream.batch_size,
        "train_micro_batch_size_per_gpu": run.parallelism.micro_batch_size,
        "gradient_accumulation_steps": run.accumulation(world_size),
        "gradient_clipping": run.optimizer.grad_clip,
        "zero_optimization": {"stage": run.parallelism.zero_stage},
        # Mixed precision as the released runs (OLMo's amp_bf16 + FSDP "mixed"): fp32 weights, which are the
        # optimizer's master weights, a bf16 autocast forward, gradients reduced in fp32. DeepSpeed's "bf16"
        # mode would instead cast the weights to bf16 and build its fp32 master copy from the rounded values.
        "torch_autocast": {"enabled": bf16, "dtype": "bfloat16", "lower_precision_safe_modules": []},
        "steps_per_print": 1 << 30,
        "wall_clock_breakdown": False,
    }


def _free_port() -> int:
    """A free local port, so that single-process jobs can share a node."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: DeepSpeed's shared-memory collective for CPU ranks: its backend JIT-compiles it when it starts (a minute of one
#: core, once per environment, and again whenever another environment rebuilt it in the shared torch_extensions
#: cache), yet only its inference all-reduce uses it; training reduces with torch.distributed (gloo, NCCL).
SHM_OP = "deepspeed_shm_comm"


def _without_shared_memory_op() -> None:
    """Mark ``SHM_OP`` incompatible, so DeepSpeed's backend builds and loads nothing (changes no number)."""
    from deepspeed import ops

    ops.__compatible_ops__[SHM_OP] = False


def _init_distributed(backend: str) -> None:
    """Join the job's process group: its place from the launcher, Slurm, or alone (kentropy.training.ranks)."""
    import deepspeed

    place = process_group_environment(os.environ, _free_port)
    os.environ.update(place)
    _without_shared_memory_op()
    deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False)
    node = os.environ.get("SLURMD_NODENAME") or socket.gethostname()  # a failed task's log line names both
    log.info("rank %s of %s on %s (local rank %s)", place["RANK"], place["WORLD_SIZE"], node, place["LOCAL_RANK"])


def load_trainable(model_dir: str, config: dict, checkpointing: bool = False):
    """The starting checkpoint as fp32 weights (the optimizer's master weights), and the dtype its trained model
    is saved in: the checkpoint's, so "before" and "after" are scored in the same precision.

    Under ZeRO-3 the model is built partitioned: while transformers' ``HfDeepSpeedConfig`` for ``config`` lives,
    ``from_pretrained`` constructs the model inside ``deepspeed.zero.Init`` and loads each weight straight into
    its shards, so no rank holds the whole fp32 model (OLMo-7B: 28 GB per rank otherwise). ``checkpointing``:
    recompute each layer's activations in the backward pass (memory for time; the same numbers)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    saved_dtype = AutoConfig.from_pretrained(model_dir).dtype or torch.float32
    if isinstance(saved_dtype, str):
        saved_dtype = getattr(torch, saved_dtype)
    if config["zero_optimization"]["stage"] != 3:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    else:
        from transformers.integrations import HfDeepSpeedConfig, unset_hf_deepspeed_config

        alive = HfDeepSpeedConfig(config)  # noqa: F841 (transformers holds only a weak reference to it)
        try:
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        finally:
            unset_hf_deepspeed_config()
    model.config.use_cache = False
    if checkpointing:
        model.gradient_checkpointing_enable()
    return model, saved_dtype


def make_engine(model, run: Run, world_size: int, bf16: bool, compile: bool = False, monitor: Monitor | None = None):
    """``deepspeed.initialize`` with our AdamW and the warmup-cosine schedule (one definition, shared with
    pretraining, instead of DeepSpeed's WarmupCosineLR whose warmup shape differs). On a GPU the AdamW update
    is torch's fused kernel; ``compile`` compiles the model's forward and backward (``engine.compile``:
    inductor fuses the norms, rotary embeddings and the loss's softmax). Both change rounding only. ``monitor``
    adds DeepSpeed's monitor sections (kentropy.training.monitor), which change nothing the engine computes."""
    import deepspeed

    config = deepspeed_config(run, world_size, bf16)
    if monitor is not None:
        os.environ.update(monitor.environment())
        config |= monitor.deepspeed_sections()

    def schedule(opt):  # built on DeepSpeed's wrapped optimizer, whose param groups ZeRO may regroup
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s + 1, run.schedule))  # OLMo: from 1

    engine, _, _, _ = deepspeed.initialize(
        model=model,
        optimizer=adamw(model, run.optimizer, fused=torch.cuda.is_available()),
        lr_scheduler=schedule,
        config=config,
    )
    if compile:
        engine.compile()
    return engine


def train_step(
    engine, tokens: np.ndarray, step: int, run: Run, rank: int, world_size: int, device: torch.device
) -> torch.Tensor:
    """One optimizer step on stream rows ``[step * batch_size, (step + 1) * batch_size)``: this rank's
    contiguous share in micro-batches. Returns the sum of this rank's micro-batch losses."""
    acc, batch, micro = run.accumulation(world_size), run.stream.batch_size, run.parallelism.micro_batch_size
    first = step * batch + rank * (batch // world_size)
    total = torch.zeros((), device=device)
    for a in range(acc):
        rows = slice(first + a * micro, first + (a + 1) * micro)
        batch = torch.from_numpy(np.asarray(tokens[rows], dtype=np.int64)).to(device)
        loss = engine(input_ids=batch, labels=batch).loss
        engine.backward(loss)
        engine.step()
        total += loss.detach().float()
    return total


@dataclass(frozen=True)
class Retention:
    """Probes scored during training, for retention curves (Chang et al. 2024)."""

    probes: pd.DataFrame  #: one row per probe (kentropy.sources.fictional_knowledge.probe_table)
    steps: tuple[int, ...]  #: score after these optimizer steps (kentropy.core.plan.Run.retention_steps)
    batch_size: int  #: probes per forward pass
    max_length: int | None  #: longer probes lose tokens from the left of the input
    released: ReleasedEvaluator  #: batching of the released evaluator (the ``released`` score)
    path: str  #: Parquet output: kentropy.core.vocabulary.PROBE_COLUMNS


def _score_retention(engine, encoded: EncodedProbes, retention: Retention, step: int) -> list[dict]:
    """Both scores of every probe after ``step`` (kentropy.analysis.forgetting aggregates them into retention and
    forgetting curves). Every rank scores (ZeRO-3 forwards are collective)."""
    engine.module.eval()
    # No bar of its own: a second bar inside the training's would only break that one's lines in the log.
    scores = score_encoded(engine.module, encoded, retention.batch_size, retention.released, progress=False)
    engine.module.train()
    scored = pd.concat([retention.probes.assign(step=step), scores], axis=1)
    return scored[PROBE_COLUMNS].to_dict("records")


def run_fingerprint(model_dir: str, stream_path: str, run: Run, retention: Retention | None) -> dict:
    """Everything a training job's result depends on: the run's settings, the stream's bytes, the starting
    checkpoint (its recorded hashes, kentropy.core.integrity, else each weight file's size and modification time,
    and its config), and what the retention curve scores. A resumable state is only resumed under the same one."""
    folder = Path(model_dir)
    weights = recorded(folder) or {
        f.name: [f.stat().st_size, f.stat().st_mtime_ns]
        for f in sorted(folder.iterdir())
        if f.name.endswith(WEIGHT_SUFFIXES)
    }
    probes = None
    if retention is not None:
        probes = {"steps": list(retention.steps), "max_length": retention.max_length}
        probes["released"] = retention.released.to_dict()
    return {
        "run": run.to_dict(),
        "stream": sha256(stream_path),
        "checkpoint": {"weights": weights, "config": sha256(folder / "config.json")},
        "retention": probes,
    }


def _dotted(settings: dict, prefix: str = "") -> dict:
    """A nested settings dict flattened to dotted keys (``optimizer.lr``), as a message names them."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat |= _dotted(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _stale_reason(work_dir: str, fingerprint: dict) -> str | None:
    """Why the resumable state in ``work_dir`` belongs to another run (None: it is this run's, or there is none)."""
    work = Path(work_dir)
    if not (work / LATEST).is_file():
        return None
    saved = work / FINGERPRINT
    if not saved.is_file():
        return "it records no fingerprint"
    old = json.loads(saved.read_text())
    changed = [key for key in fingerprint if old.get(key) != fingerprint[key]]
    if not changed:
        return None
    if "run" in changed:
        before, now = _dotted(old["run"]), _dotted(fingerprint["run"])
        keys = [k for k in now if before.get(k) != now[k]]
        return "the run's settings changed: " + ", ".join(f"{k} {before.get(k)} -> {now[k]}" for k in keys)
    return "the " + " and the ".join(changed) + " changed"


def train(
    model_dir: str,
    stream_path: str,
    run: Run,
    out_dir: str,
    loss_path: str,
    work_dir: str,
    retention: Retention | None = None,
    compile: bool = False,
    monitor: Monitor | None = None,
    checkpointing: bool = False,
) -> pd.DataFrame:
    """Train the checkpoint in ``model_dir`` on the stream; write the HF model and the loss log (and the
    retention curve when ``retention`` is given).

    ``work_dir`` holds the DeepSpeed checkpoints; it is removed after a successful run. ``compile``: see
    ``make_engine`` (speed only, so not part of the run's fingerprint). ``monitor``: live logs of loss, learning
    rate, tokens/s and retention scores (kentropy.training.monitor; not part of the fingerprint either).
    ``checkpointing``: activation checkpointing (``load_trainable``; memory only, not in the fingerprint).
    """
    import deepspeed
    import torch.distributed as dist
    from transformers import AutoTokenizer

    phases = Phases()
    cuda = torch.cuda.is_available()
    _init_distributed("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    torch.manual_seed(run.seed)
    tokens = np.load(stream_path, mmap_mode="r")
    if len(tokens) < run.total_steps * run.stream.batch_size:
        raise ValueError(f"{stream_path}: {len(tokens)} rows, the run needs {run.total_steps * run.stream.batch_size}")
    bf16 = cuda and torch.cuda.is_bf16_supported()
    verify(model_dir)  # the starting checkpoint's bytes, as its producer wrote them
    model, saved_dtype = load_trainable(model_dir, deepspeed_config(run, world, bf16), checkpointing)
    if run.parallelism.zero_stage == 3:
        held = sum(p.ds_tensor.numel() for p in model.parameters())
        log.info("ZeRO-3: built partitioned, rank %d holds %d of %d weights", rank, held,
                 sum(p.ds_numel for p in model.parameters()))  # fmt: skip
    engine = make_engine(model, run, world, bf16=bf16, compile=compile, monitor=monitor)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # Tokenised once: the same probes are scored after every one of retention.steps.
    encoded = encode_probes(tokenizer, retention.probes, retention.max_length) if retention is not None else None
    # One decision, rank 0's, told to every rank: ranks on several nodes may see a shared folder differently.
    resume = [False]
    if rank == 0:
        fingerprint = run_fingerprint(model_dir, stream_path, run, retention)
        stale = _stale_reason(work_dir, fingerprint)
        if stale:
            log.warning("not resuming from %s: %s; starting fresh", work_dir, stale)
            shutil.rmtree(work_dir)
        resume[0] = (Path(work_dir) / LATEST).is_file()
        # Written before any checkpoint, so a state that exists always has its fingerprint beside it.
        with atomic_file(Path(work_dir) / FINGERPRINT) as tmp:
            tmp.write_text(json.dumps(fingerprint, sort_keys=True))
    dist.broadcast_object_list(resume, src=0)
    start, logs = 0, {"losses": [], "retention": []}
    if resume[0]:
        _, client = engine.load_checkpoint(work_dir)
        start, logs = client["step"], client["logs"]
        log.info("resumed from %s at step %d", work_dir, start)
    losses = logs["losses"]
    phases.lap("setup")

    engine.train()
    bar = tqdm(
        range(start, run.total_steps),
        desc="continual",
        unit="step",
        disable=rank != 0,
        initial=start,
        total=run.total_steps,
    )
    step_tokens = run.stream.batch_size * tokens.shape[1]
    for step in bar:
        lr = engine.get_lr()[0]  # what the optimizer uses for this step (restored on resume)
        began = time.perf_counter()
        total = train_step(engine, tokens, step, run, rank, world, device)
        dist.all_reduce(total)
        losses.append({"step": step + 1, "loss": total.item() / (run.accumulation(world) * world), "lr": lr})
        if not np.isfinite(losses[-1]["loss"]):  # every rank sees the reduced loss, so every rank stops
            raise FloatingPointError(f"continual training: the loss is {losses[-1]['loss']} at step {step + 1}; stop")
        bar.set_postfix(loss=f"{losses[-1]['loss']:.3f}", refresh=False)
        events = step_events(step + 1, losses[-1]["loss"], lr, step_tokens / (time.perf_counter() - began))
        phases.lap("train")
        if retention is not None and step + 1 in retention.steps:
            scored = _score_retention(engine, encoded, retention, step + 1)
            logs["retention"] += scored
            events += retention_events(scored, step + 1)
            phases.lap("retention")
        if monitor is not None and monitor.enabled:
            engine.monitor.write_events(events)  # rank 0 writes; the others' monitors are inert
        if (step + 1) % run.save_interval == 0 and step + 1 < run.total_steps:
            _save_resumable(engine, work_dir, step + 1, logs, rank)
            phases.lap("checkpoints")
    table = pd.DataFrame(losses, columns=["step", "loss", "lr"])
    # ZeRO-3 shards the weights themselves: every rank joins the gather, rank 0 writes the full model.
    gathered = (
        deepspeed.zero.GatheredParameters(list(engine.module.parameters()))
        if run.parallelism.zero_stage == 3
        else contextlib.nullcontext()
    )
    with gathered:
        if rank == 0:
            with checkpoint_dir(out_dir) as tmp:
                state = {name: t.to(saved_dtype) for name, t in engine.module.state_dict().items()}
                engine.module.config.dtype = saved_dtype
                engine.module.save_pretrained(tmp, state_dict=state)
                tokenizer.save_pretrained(tmp)
                (tmp / "continual.json").write_text(json.dumps({"run": run.to_dict(), "world_size": world}, indent=1))
                write_checksums(tmp)
            write_table(table, loss_path)
            if retention is not None:
                write_table(pd.DataFrame(logs["retention"], columns=PROBE_COLUMNS), retention.path)
    dist.barrier()
    if rank == 0:
        shutil.rmtree(work_dir, ignore_errors=True)
    phases.lap("write")
    log.info("time: %s", phases)
    return table


def _save_resumable(engine, work_dir: str, step: int, logs: dict, rank: int) -> None:
    """Save a DeepSpeed checkpoint tagged by step (with the logs so far), mark it the latest once every rank has
    written its shard, then drop the older ones. DeepSpeed's own marker is written by rank 0 before the other ranks
    are known to be done, so a rank killed then would leave a marker naming a checkpoint without its shard."""
    tag = f"step{step}"
    engine.save_checkpoint(work_dir, tag=tag, client_state={"step": step, "logs": logs}, save_latest=False)
    torch.distributed.barrier()  # every rank's shard is written
    if rank == 0:
        with atomic_file(Path(work_dir) / LATEST) as tmp:
            tmp.write_text(tag)
        for old in Path(work_dir).glob("step*"):
            if old.name != tag:
                shutil.rmtree(old, ignore_errors=True)

"""Tokens/s of the DeepSpeed continual-training path against a plain PyTorch loop, in one run.

Same randomly initialised OLMo-architecture model, same batches, same AdamW, schedule and clipping:
  plain:     model in fp32, torch.autocast(bfloat16) on GPU, gradient accumulation by hand;
  deepspeed: kentropy.training.continual.make_engine + train_step (fp32 master weights + bf16 autocast + ZeRO on
             GPU, fp32 on CPU), exactly what the continual_train rule runs.
``--compile`` compiles the model in both (the ``continual.compile`` setting); on a GPU both use the fused
AdamW kernel, as the training path does. Prints one JSON line: tokens/s of each, the slowdown ratio
(plain / deepspeed), and on a GPU the model FLOPs utilisation (6 N + 12 L d T FLOPs per token, against
--peak-tflops) and each path's peak memory.

    python bench/train_throughput.py                                      # CPU, a small model
    python bench/train_throughput.py --device cuda --size 1b --compile    # OLMo-1B shape, bf16, MFU
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

SIZES = {
    # hidden, ffn, layers, heads, vocab
    "small": (256, 1024, 4, 4, 8192),
    "1b": (2048, 8192, 16, 16, 50304),  # OLMo-1B
}


def build(args):
    from transformers import OlmoConfig, OlmoForCausalLM

    hidden, ffn, layers, heads, vocab = SIZES[args.size]
    torch.manual_seed(0)
    cfg = OlmoConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=args.seq,
        pad_token_id=1,
        bos_token_id=None,
        eos_token_id=0,
        tie_word_embeddings=False,
        use_cache=False,
    )
    return OlmoForCausalLM(cfg).to(args.device)


def flops_per_token(model, seq: int) -> float:
    """6 N (N = parameters without the input embedding) + 12 L d T for attention scores and values."""
    cfg = model.config
    n = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    return 6 * n + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(step_fn, args) -> float:
    """Tokens/s over ``args.steps`` steps after ``args.warmup`` untimed ones."""
    for step in range(args.warmup):
        step_fn(step)
    sync(args.device)
    start = time.perf_counter()
    for step in range(args.warmup, args.warmup + args.steps):
        step_fn(step)
    sync(args.device)
    return args.steps * args.batch * args.seq / (time.perf_counter() - start)


def plain(args, run, tokens) -> float:
    from kentropy.training.schedule import adamw, warmup_cosine

    model = build(args).train()
    if args.compile:
        model.compile()
    optimizer = adamw(model, run.optimizer, fused=args.device == "cuda")
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s + 1, run.schedule))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.device == "cuda")
    micro = args.batch // args.micro

    def step(i):
        for a in range(micro):
            rows = slice(i * args.batch + a * args.micro, i * args.batch + (a + 1) * args.micro)
            batch = torch.from_numpy(np.asarray(tokens[rows], dtype=np.int64)).to(args.device)
            with autocast:
                loss = model(input_ids=batch, labels=batch).loss / micro
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), run.optimizer.grad_clip)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)

    return timed(step, args)


def deepspeed_path(args, run, tokens) -> tuple[float, float]:
    from kentropy.training.continual import _init_distributed, make_engine, train_step

    _init_distributed("nccl" if args.device == "cuda" else "gloo")
    model = build(args)
    engine = make_engine(model, run, 1, bf16=args.device == "cuda", compile=args.compile)
    engine.train()
    step = lambda i: train_step(engine, tokens, i, run, 0, 1, torch.device(args.device))  # noqa: E731
    tps = timed(step, args)
    if args.profile:
        profile(step, args)
    return tps, flops_per_token(model, args.seq)


def profile(step_fn, args) -> None:
    """Kernel-time table of two more DeepSpeed steps (torch.profiler), written to ``args.profile``."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        for i in range(2):
            step_fn(args.warmup + args.steps + i)
        sync(args.device)
    key = "cuda_time_total" if args.device == "cuda" else "cpu_time_total"
    with open(args.profile, "w") as f:
        f.write(prof.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=90))


def main() -> None:
    from kentropy.core.plan import Optimizer, Parallelism, Run, Schedule, Stream

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", default="small", choices=list(SIZES))
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16, help="global batch (rows per optimizer step)")
    parser.add_argument("--micro", type=int, default=8, help="rows per forward pass")
    parser.add_argument("--zero-stage", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (both paths)")
    parser.add_argument("--profile", help="write a kernel-time table of the DeepSpeed path to this file")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H100/H200 SXM: 989)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    total_steps = args.warmup + args.steps + 2
    run = Run(
        name="throughput",
        run="throughput",
        seed=0,
        # the random stream carries no injections
        stream=Stream("random", args.batch, args.seq, 1, total_steps, inject_interval=total_steps, n_injections=1),
        optimizer=Optimizer(lr=4e-4, weight_decay=0.1, grad_clip=1.0),
        schedule=Schedule(total_steps, warmup_fraction=0.05, alpha_f=0.1),
        parallelism=Parallelism(micro_batch_size=args.micro, zero_stage=args.zero_stage),
        save_interval=1 << 30,
    )
    vocab = SIZES[args.size][4]
    tokens = np.random.default_rng(0).integers(2, vocab, size=(run.total_steps * args.batch, args.seq), dtype=np.int32)
    plain_tps = plain(args, run, tokens)
    peaks = {}
    if args.device == "cuda":
        peaks["plain_peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    ds_tps, fpt = deepspeed_path(args, run, tokens)
    out = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "size": args.size,
        "seq": args.seq,
        "batch": args.batch,
        "micro": args.micro,
        "zero_stage": args.zero_stage,
        "compile": args.compile,
        "plain_tokens_per_s": round(plain_tps, 1),
        "deepspeed_tokens_per_s": round(ds_tps, 1),
        "slowdown": round(plain_tps / ds_tps, 3),
    }
    if args.device == "cuda":
        out["deepspeed_mfu"] = round(ds_tps * fpt / (args.peak_tflops * 1e12), 4)
        out["plain_mfu"] = round(plain_tps * fpt / (args.peak_tflops * 1e12), 4)
        out.update(peaks, deepspeed_peak_memory_gib=round(torch.cuda.max_memory_allocated() / 2**30, 1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()

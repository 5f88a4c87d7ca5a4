"""Cost of the entropy pass against a plain forward, and its memory against materialising coefficients.

Same randomly initialised OLMo-architecture model, same batches, one run, per dtype:
  time:   plain forward with the fastest attention available (SDPA: flash/efficient on GPU, the CPU flash
          kernel on CPU; no hooks) vs kentropy.measurement.entropy_pass.measure (every registered metric) with fused
          attention entropy (kentropy.measurement.attention), vs the same pass with eager attention (the weights
          materialised, as before kentropy.measurement.attention); median of interleaved repeats.
  memory: peak RSS of a fresh process running (a) our streaming pass, (b) the released code's approach
          (keep every layer's coefficients for every token, then average) on growing corpora.

    python bench/entropy_overhead.py                 # CPU defaults (a ~30M-parameter model)
    python bench/entropy_overhead.py --device cuda   # on a GPU (peak = torch.cuda.max_memory_allocated)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch


def build(args):
    from transformers import OlmoConfig, OlmoForCausalLM

    torch.manual_seed(0)
    cfg = OlmoConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.ffn,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        max_position_embeddings=args.seq,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=1,
    )
    from kentropy.measurement.attention import ENTROPY_ATTENTION

    model = OlmoForCausalLM(cfg).to(args.device).eval()
    model.set_attn_implementation(ENTROPY_ATTENTION)
    return model


def batches(args, n_sequences: int):
    g = torch.Generator().manual_seed(1)
    for start in range(0, n_sequences, args.batch):
        n = min(args.batch, n_sequences - start)
        yield {
            "input_ids": torch.randint(2, args.vocab, (n, args.seq), generator=g),
            "attention_mask": torch.ones(n, args.seq, dtype=torch.long),
        }


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def plain_pass(model, data, device):
    for b in data:
        model(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device))


def materialising_pass(model, data, device):
    """What the released code did: keep all coefficients, average at the end."""
    from kentropy.sources.architectures import decoder_layers

    kept = [[] for _ in decoder_layers(model)]
    handles = [
        layer.down.register_forward_pre_hook(lambda m, a, i=i: kept[i].append(a[0].detach().abs()))
        for i, layer in enumerate(decoder_layers(model))
    ]
    plain_pass(model, data, device)
    for h in handles:
        h.remove()
    return [torch.cat([c.flatten(0, 1) for c in layer]).mean(0) for layer in kept]


def timed(fn, device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def time_ratio(args, dtype: torch.dtype) -> dict:
    """Median seconds of the plain SDPA forward, the fused entropy pass and the eager entropy pass."""
    from kentropy.measurement.attention import ENTROPY_ATTENTION
    from kentropy.measurement.entropy_pass import measure

    model = build(args).to(dtype)
    data = list(batches(args, args.time_sequences))
    passes = {
        "plain": ("sdpa", lambda: plain_pass(model, data, args.device)),
        "fused": (ENTROPY_ATTENTION, lambda: measure(model, data, progress=False, average="instance")),
        "eager": ("eager", lambda: measure(model, data, progress=False, average="instance")),
    }
    times = {name: [] for name in passes}
    for repeat in range(args.repeats + 1):  # interleaved, so drift hits all alike; the first is a warm-up
        for name, (attention, run) in passes.items():
            model.set_attn_implementation(attention)
            seconds = timed(run, args.device)
            if repeat:
                times[name].append(seconds)
    return {name: statistics.median(t) for name, t in times.items()}


def _status_kib(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS, so model init does not count."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS") * 1024


def peak_memory_child(args, method: str, n_sequences: int) -> None:
    """Runs in a fresh process; prints peak memory (bytes) above the loaded model."""
    from kentropy.measurement.entropy_pass import measure

    model = build(args)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _reset_peak_rss()
    data = batches(args, n_sequences)  # a generator: the corpus itself is never held in memory
    if method == "streaming":
        measure(model, data, progress=False, average="instance")
    else:
        materialising_pass(model, data, args.device)
    peak = torch.cuda.max_memory_allocated() if args.device == "cuda" else _status_kib("VmHWM") * 1024
    print(json.dumps({"peak_above_model_bytes": peak - base}))


def peak_memory(args, method: str, n_sequences: int) -> str:
    """Peak MiB as text, or why the child died (the materialising baseline runs out of memory first)."""
    cmd = [sys.executable, __file__, "--child", method, str(n_sequences), *sys.argv[1:]]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return "killed (OOM)" if proc.returncode == -9 else f"failed ({proc.returncode})"
    return f"{json.loads(proc.stdout.strip().splitlines()[-1])['peak_above_model_bytes'] / 2**20:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--ffn", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=16384)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--time-sequences", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtypes", nargs="+", default=None, help="default: float32 on CPU; bfloat16 float32 on GPU")
    ap.add_argument("--memory-sequences", type=int, nargs="+", default=[32, 128, 384])
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args, _ = ap.parse_known_args()
    if args.child:
        peak_memory_child(args, args.child[0], int(args.child[1]))
        return
    print(
        f"model: hidden {args.hidden}, d_ff {args.ffn}, {args.layers} layers, vocab {args.vocab}; "
        f"{args.time_sequences} x {args.seq} tokens, batch {args.batch}, device {args.device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    dtypes = args.dtypes or (["float32"] if args.device == "cpu" else ["bfloat16", "float32"])
    for name in dtypes:
        t = time_ratio(args, getattr(torch, name))
        print(
            f"time ({name}, median of {args.repeats}): plain SDPA forward {t['plain']:.3f} s | entropy pass, fused "
            f"{t['fused']:.3f} s ({t['fused'] / t['plain']:.3f}x the plain forward) | entropy pass, eager "
            f"{t['eager']:.3f} s ({t['eager'] / t['plain']:.3f}x); fused is {t['eager'] / t['fused']:.2f}x faster "
            "than eager"
        )
    print("memory: peak above the loaded model, MiB (streaming | materialising)")
    for n in args.memory_sequences:
        s, m = peak_memory(args, "streaming", n), peak_memory(args, "materialising", n)
        print(f"  {n:6d} sequences ({n * args.seq:8d} tokens): {s:>12} | {m:>12}")


if __name__ == "__main__":
    main()

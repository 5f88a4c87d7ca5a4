"""Padding saved by measuring the entropy corpus longest first (kentropy.sources.corpora.longest_first), in one run.

A corpus with a C4-like length spread (document lengths log-normal, median ``--median`` tokens, cut to
``--max-length`` as the entropy pass cuts them; token ids random: the cost of a forward pass does not depend
on them) is measured twice by ``kentropy.measurement.entropy_pass.measure`` on the same randomly initialised
OLMo-architecture model, with fused attention entropy as the DAG measures: in corpus order (before) and longest first
(after). Printed: the padded fraction of each order's batches, the median time of interleaved repeats and their ratio,
and the largest relative difference between the two orders' metrics (float32 model: rounding only; float64:
float64 rounding).

    python bench/entropy_padding.py                  # CPU defaults
    python bench/entropy_padding.py --device cuda --docs 2048 --batch 16 --hidden 2048 --ffn 8192 --layers 16
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from kentropy.measurement.entropy_pass import measure
from kentropy.sources.corpora import longest_first, padded_batches


def corpus(args) -> list[list[int]]:
    rng = np.random.default_rng(0)
    lengths = np.exp(rng.normal(np.log(args.median), args.sigma, args.docs)).astype(int).clip(8, args.max_length)
    return [rng.integers(2, args.vocab, n).tolist() for n in lengths]


def padded_fraction(sequences: list[list[int]], batch: int) -> float:
    chunks = (sequences[i : i + batch] for i in range(0, len(sequences), batch))
    slots = sum(len(chunk) * max(map(len, chunk)) for chunk in chunks)
    return 1 - sum(map(len, sequences)) / slots


def build(args, dtype):
    """entropy_overhead's randomly initialised OLMo-architecture model, with fused attention entropy."""
    from entropy_overhead import build as olmo  # bench/ is the script's folder, so it is on sys.path

    return olmo(argparse.Namespace(**vars(args), seq=args.max_length)).to(dtype)


def run(model, sequences, batch, device) -> tuple[float, object]:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    meter = measure(model, padded_batches(sequences, batch, pad_id=0), progress=False, average="instance")
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, meter.table()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--median", type=int, default=300, help="median document length, tokens")
    parser.add_argument("--sigma", type=float, default=1.0, help="log-normal spread of the lengths")
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--ffn", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    docs = corpus(args)
    sorted_docs = longest_first(docs)
    lengths = np.array(list(map(len, docs)))
    print(
        f"corpus: {len(docs)} documents, {lengths.sum():,} tokens; length median {int(np.median(lengths))}, "
        f"p90 {int(np.percentile(lengths, 90))}, max {lengths.max()} (log-normal, sigma {args.sigma}, cut at "
        f"{args.max_length}); batch {args.batch}; model {args.layers} layers, d_model {args.hidden}, d_ff {args.ffn}"
    )
    before, after = padded_fraction(docs, args.batch), padded_fraction(sorted_docs, args.batch)
    print(f"padded fraction of the batches: corpus order {before:.1%}, longest first {after:.1%}")

    model = build(args, torch.float32)
    times = {"corpus order": [], "longest first": []}
    tables = {}
    for _ in range(args.repeats):  # interleaved: a drifting machine slows both alike
        for name, seqs in (("corpus order", docs), ("longest first", sorted_docs)):
            seconds, tables[name] = run(model, seqs, args.batch, args.device)
            times[name].append(seconds)
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"entropy pass, {name}: median {medians[name]:.2f} s of {[round(x, 2) for x in t]}")
    print(f"speed-up: {medians['corpus order'] / medians['longest first']:.2f}x")

    def largest_difference(a, b) -> float:
        return float(((a.value - b.value).abs() / b.value.abs().clip(lower=1e-300)).max())

    print(f"float32 model: largest relative difference {largest_difference(*tables.values()):.1e}")
    model64 = build(args, torch.float64)
    small = docs[: 4 * args.batch]  # float64 is slow on CPU: a slice of the corpus suffices for the check
    t64 = [run(model64, seqs, args.batch, args.device)[1] for seqs in (small, longest_first(small))]
    print(f"float64 model ({len(small)} documents): largest relative difference {largest_difference(*t64):.1e}")


if __name__ == "__main__":
    main()

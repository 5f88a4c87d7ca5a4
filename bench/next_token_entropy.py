"""Next-token entropy over a batch of logits: the current ``kentropy.measurement.entropy_pass.next_token_entropy``
against the version it replaced (256-row chunks, the e.z' sum as a batched dot product), in one run.

Same random logits (scaled normal, so rows range from peaked to flat) for each vocabulary size; prints the
median time of each, their ratio, and each one's largest relative error per row against float64.

    python bench/next_token_entropy.py
    python bench/next_token_entropy.py --rows 8192 --vocab 50304 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from kentropy.measurement.meters.kernels import next_token_entropy


def before(logits: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """The replaced version (commit 4363ed4), per row instead of weight-summed."""
    parts = []
    for rows in logits.split(chunk):
        shifted = rows - rows.amax(-1, keepdim=True)
        e = shifted.exp()
        s = e.sum(-1)
        parts.append(s.log() - torch.einsum("nv,nv->n", e, shifted) / s)
    return torch.cat(parts)


def timed(fn, logits: torch.Tensor, repeats: int) -> float:
    seconds = []
    for _ in range(repeats + 1):  # the first is a warm-up
        if logits.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(logits)
        if logits.is_cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2048, help="positions per batch (8 x 256 in the default pass)")
    parser.add_argument("--vocab", type=int, nargs="+", default=[16384, 50304])
    parser.add_argument("--scale", type=float, default=4.0, help="logit standard deviation")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(
        f"{args.rows} rows, float32, device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    for vocab in args.vocab:
        logits = torch.randn(args.rows, vocab, generator=torch.Generator().manual_seed(0)).mul_(args.scale)
        logits = logits.to(args.device)
        logp = torch.log_softmax(logits.double(), -1)
        exact = -(logp.exp() * logp).sum(-1)  # float64, the textbook formula
        t_before, t_now = timed(before, logits, args.repeats), timed(next_token_entropy, logits, args.repeats)
        err_before = ((before(logits).double() - exact).abs() / exact).max().item()
        err_now = ((next_token_entropy(logits).double() - exact).abs() / exact).max().item()
        print(
            f"vocab {vocab:6d}: before {t_before * 1e3:7.1f} ms (max rel. error {err_before:.1e}) | now "
            f"{t_now * 1e3:7.1f} ms (max rel. error {err_now:.1e}) | {t_before / t_now:.2f}x faster"
        )


if __name__ == "__main__":
    main()

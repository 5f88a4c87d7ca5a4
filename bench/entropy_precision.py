"""What measuring in bf16 instead of fp32 does to every entropy, on a real checkpoint and corpus.

One run, the same checkpoint and documents: ``kentropy.measurement.entropy_pass.measure`` with the model loaded in
float32 (the released code's precision and the paper configs' default) and in bfloat16; prints each whole-model
metric in both and the relative difference.

    python bench/entropy_precision.py --checkpoint resources/tiny/checkpoints/tiny/step1200 \
        --corpus resources/tiny/corpora/generated.parquet
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="save_pretrained folder")
    parser.add_argument("--corpus", required=True, help="Parquet corpus (text or input_ids)")
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    from kentropy.measurement.attention import ENTROPY_ATTENTION
    from kentropy.measurement.entropy_pass import measure
    from kentropy.sources.architectures import load_causal_lm
    from kentropy.sources.corpora import pad_id_of, padded_batches, token_sequences

    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    pad = pad_id_of(tokenizer)
    sequences = token_sequences(pd.read_parquet(args.corpus).head(args.count), tokenizer, args.max_length)
    values = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = load_causal_lm(args.checkpoint, dtype, ENTROPY_ATTENTION).to(args.device)
        table = measure(
            model, padded_batches(sequences, args.batch_size, pad), progress=False, average="instance"
        ).table()
        values[str(dtype).split(".")[-1]] = table[table.layer.isna()].set_index("metric").value
    out = pd.DataFrame(values)
    out["bf16 - fp32"] = out.bfloat16 - out.float32
    out["relative"] = out["bf16 - fp32"] / out.float32
    print(f"{args.checkpoint}: {len(sequences)} documents, up to {args.max_length} tokens")
    print(out.to_string(float_format=lambda v: f"{v:.6g}"))


if __name__ == "__main__":
    main()

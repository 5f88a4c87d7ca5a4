"""Evaluate one model state on the downstream tasks with lm-eval (kentropy.downstream)."""

import json
import os
from pathlib import Path

from kentropy.offline import hf_env

os.environ.update(hf_env(snakemake.config.get("hf_cache")))  # before any HF import: the prefetched cache only

import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from kentropy.architectures import load_causal_lm  # noqa: E402
from kentropy.downstream import evaluate  # noqa: E402
from kentropy.io import write_table  # noqa: E402
from kentropy.layout import with_keys  # noqa: E402
from kentropy.logs import log_to  # noqa: E402

wc = snakemake.wildcards
cfg = snakemake.params.downstream
with log_to(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    benchmarks = json.loads((Path(snakemake.input.benchmarks) / "tasks.json").read_text())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_causal_lm(snakemake.input.model, dtype=torch.float32).to(device)
    tokenizer = AutoTokenizer.from_pretrained(snakemake.input.model)
    batch_size = snakemake.config["downstream"]["batch_size"]  # speed only: read here, not a param
    table = evaluate(
        model,
        tokenizer,
        benchmarks["tasks"],
        batch_size,
        source=cfg["source"],
        data_dir=snakemake.input.benchmarks,
        num_fewshot=cfg.get("num_fewshot", 0),
        limit=cfg.get("limit"),
    )
    table = with_keys(table, model=wc.model, step=wc.step, variant=wc.variant, state=wc.state)
    write_table(table, snakemake.output[0])
    log.info("mean %s over %d tasks: %.2f%%", "/".join(sorted(set(table.metric))), len(table), table.value.mean())

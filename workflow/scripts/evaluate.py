"""Score the probes of the injected knowledge (kentropy.probes) and the downstream tasks (kentropy.downstream,
lm-eval) on one model state, loading the model once."""

import json
import os
from pathlib import Path

from kentropy.offline import hf_env

os.environ.update(hf_env(snakemake.config.get("hf_cache")))  # before any HF import: the prefetched cache only

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from kentropy.architectures import load_causal_lm  # noqa: E402
from kentropy.downstream import evaluate  # noqa: E402
from kentropy.io import write_table  # noqa: E402
from kentropy.knowledge import load_records, probe_table  # noqa: E402
from kentropy.layout import with_keys  # noqa: E402
from kentropy.logs import log_to  # noqa: E402
from kentropy.probes import ReleasedEvaluator, score_probes  # noqa: E402

wc = snakemake.wildcards
keys = dict(model=wc.model, step=wc.step, variant=wc.variant, state=wc.state)
with log_to(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_causal_lm(snakemake.input.model, dtype=torch.float32).to(device)
    tokenizer = AutoTokenizer.from_pretrained(snakemake.input.model)

    probes = probe_table(
        {"paraphrase": load_records(snakemake.input.paraphrase), "once": load_records(snakemake.input.once)}
    )
    scores = score_probes(
        model,
        tokenizer,
        probes,
        snakemake.config["probe"]["batch_size"],  # speed only: read here, not a param
        snakemake.params.probe["max_length"],
        ReleasedEvaluator(**snakemake.params.released),
    )
    table = with_keys(pd.concat([probes.drop(columns=["input", "target"]), scores], axis=1), **keys)
    write_table(table, snakemake.output.probes)
    means = table.per_token.mean(), table.released.mean()
    log.info("%d probes, mean score: per_token %.4f, released %.4f", len(table), *means)

    cfg = snakemake.params.downstream
    benchmarks = json.loads((Path(snakemake.input.benchmarks) / "tasks.json").read_text())
    table = evaluate(
        model,
        tokenizer,
        benchmarks["tasks"],
        snakemake.config["downstream"]["batch_size"],  # speed only
        source=cfg["source"],
        data_dir=snakemake.input.benchmarks,
        num_fewshot=cfg.get("num_fewshot", 0),
        limit=cfg.get("limit"),
    )
    table = with_keys(table, **keys)
    write_table(table, snakemake.output.downstream)
    log.info("mean %s over %d tasks: %.2f%%", "/".join(sorted(set(table.metric))), len(table), table.value.mean())

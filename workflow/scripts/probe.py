"""Score every probe of the injected knowledge on one model state (kentropy.probes)."""

import os

from kentropy.offline import hf_env

os.environ.update(hf_env())  # before any HF import: compute nodes read the prefetched cache only

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from kentropy.architectures import load_causal_lm  # noqa: E402
from kentropy.io import write_table  # noqa: E402
from kentropy.knowledge import load_records, probe_table  # noqa: E402
from kentropy.layout import with_keys  # noqa: E402
from kentropy.logs import log_to  # noqa: E402
from kentropy.probes import ReleasedEvaluator, score_probes  # noqa: E402

wc = snakemake.wildcards
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
        snakemake.config["probe"]["batch_size"],  # speed only
        snakemake.params.probe["max_length"],
        ReleasedEvaluator(**snakemake.params.released),
    )
    table = pd.concat([probes.drop(columns=["input", "target"]), scores], axis=1)
    table = with_keys(table, model=wc.model, step=wc.step, variant=wc.variant, state=wc.state)
    write_table(table, snakemake.output[0])
    log.info(
        "%d probes, mean score: per_token %.4f, released %.4f",
        len(table),
        table.per_token.mean(),
        table.released.mean(),
    )

"""Acquisition and forgetting of every trained model -> results/tables/continual.parquet
(kentropy.analysis.outcomes)."""

import pandas as pd

from kentropy.analysis.outcomes import CONTINUAL_COLUMNS, continual_rows
from kentropy.core.io import table_reader, write_table
from kentropy.core.logs import log_to
from kentropy.sources.fictional_knowledge import ALL

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

KEY = ["model", "trajectory", "step", "variant"]
with log_to(snakemake.log[0]) as log:
    probes = pd.concat(map(read_input, snakemake.input.probes), ignore_index=True)
    downstream = pd.concat(map(read_input, snakemake.input.downstream), ignore_index=True)
    rows = []
    by_state = dict(iter(downstream.groupby(KEY, sort=True)))
    for key, group in probes.groupby(KEY, sort=True):
        tasks = by_state[key]
        for state in sorted(set(group.state) - {"before"}):
            rows += continual_rows(
                {**dict(zip(KEY, key)), **snakemake.params.runs[state]},
                group[group.state == "before"],
                group[group.state == state],
                tasks[tasks.state == "before"],
                tasks[tasks.state == state],
            )
    table = pd.DataFrame(rows, columns=CONTINUAL_COLUMNS)
    write_table(table, snakemake.output[0])
    summary = table[(table.metric == "forgetting") | (table.split == ALL) & (table.kind == ALL)]
    log.info(
        "\n%s",
        summary.pivot_table(
            index=["model", "run", "trajectory", "seed", "step"], columns="metric", values="value"
        ).to_string(),
    )

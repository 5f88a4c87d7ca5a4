"""Knowledge entropy, acquisition and forgetting per resuscitation variant -> Parquet + Markdown."""

import pandas as pd

from kentropy.analysis.continual_tables import (
    INTERVAL_NOTE,
    RESUSCITATION_MISSING,
    RESUSCITATION_QUANTITIES,
    interval_cell,
    replicates_label,
    resuscitation_table,
)
from kentropy.analysis.outcomes import reported
from kentropy.core.io import atomic_file, table_reader, write_table
from kentropy.core.logs import log_to
from kentropy.measurement.meters import KNOWLEDGE_ENTROPY

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]):
    table = resuscitation_table(
        pd.concat(map(read_input, snakemake.input.entropy), ignore_index=True),
        reported(read_input(snakemake.input.continual), snakemake.params.score),
        snakemake.params.runs,
    )
    write_table(table, snakemake.output.parquet, missing=RESUSCITATION_MISSING)
    cells = table.assign(
        **{q: [interval_cell(*r) for r in table[[q, f"{q}_ci_low", f"{q}_ci_high"]].to_numpy()]
           for q in RESUSCITATION_QUANTITIES},
        variant=[f"{v} ({replicates_label(t, n)})" for v, t, n in zip(table.variant, table.trajectories, table.seeds)],
    )  # fmt: skip
    wide = cells.melt(
        id_vars=["model", "run", "variant", "step"], value_vars=list(RESUSCITATION_QUANTITIES), var_name="quantity"
    ).pivot(index=["model", "run", "variant", "quantity"], columns="step", values="value")
    note = f"{KNOWLEDGE_ENTROPY}: of the starting checkpoint, over trajectories; A and F: {INTERVAL_NOTE}\n"
    with atomic_file(snakemake.output.markdown) as tmp:
        tmp.write_text(wide.reset_index().to_markdown(index=False) + "\n\n" + note)

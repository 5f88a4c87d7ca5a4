"""Knowledge entropy, acquisition and forgetting per resuscitation variant -> Parquet + Markdown."""

import pandas as pd

from kentropy.io import atomic_file, table_reader, write_table
from kentropy.logs import log_to
from kentropy.meters import KNOWLEDGE_ENTROPY
from kentropy.metrics import reported
from kentropy.tables import RESUSCITATION_MISSING, interval_cell, resuscitation_table

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]):
    table = resuscitation_table(
        pd.concat(map(read_input, snakemake.input.entropy), ignore_index=True),
        reported(read_input(snakemake.input.continual), snakemake.params.score),
        snakemake.params.runs,
    )
    write_table(table, snakemake.output.parquet, missing=RESUSCITATION_MISSING)
    cells = table.assign(
        **{KNOWLEDGE_ENTROPY: table[KNOWLEDGE_ENTROPY].map("{:.3f}".format)},
        **{q: [interval_cell(*r) for r in table[[q, f"{q}_ci_low", f"{q}_ci_high"]].to_numpy()] for q in ("A", "F")},
        variant=[f"{v} ({n} seed{'' if n == 1 else 's'})" for v, n in zip(table.variant, table.seeds)],
    )
    wide = cells.melt(
        id_vars=["model", "run", "variant", "step"], value_vars=[KNOWLEDGE_ENTROPY, "A", "F"], var_name="quantity"
    ).pivot(index=["model", "run", "variant", "quantity"], columns="step", values="value")
    note = "A and F: mean over seeds ± the half-width of its 95% Student-t interval (none for one seed).\n"
    with atomic_file(snakemake.output.markdown) as tmp:
        tmp.write_text(wide.reset_index().to_markdown(index=False) + "\n\n" + note)

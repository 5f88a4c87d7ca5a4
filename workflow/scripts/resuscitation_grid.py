"""Figure 5 or 15 (A, F vs q at fixed p) or Figure 13 (vs p at fixed q) from the resuscitation table,
for the checkpoint steps the rule names."""

import pandas as pd

from kentropy.figures import resuscitation_grid, save
from kentropy.logs import log_to

with log_to(snakemake.log[0]):
    table = pd.read_parquet(snakemake.input[0])
    table = table[table.step.isin(snakemake.params.steps)]
    save(resuscitation_grid(table, snakemake.params.axis, snakemake.params.fixed), list(snakemake.output))

"""Figure 5 (A, F vs q at fixed p) or Figure 13 (vs p at fixed q) from the resuscitation table."""
import pandas as pd

from kentropy.figures import resuscitation_grid, save
from kentropy.logs import log_to

with log_to(snakemake.log[0]):
    fig = resuscitation_grid(pd.read_parquet(snakemake.input[0]), snakemake.params.axis, snakemake.params.fixed)
    save(fig, list(snakemake.output))

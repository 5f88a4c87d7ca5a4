"""Figure 12 from the continual table: one line per continual-training corpus (kentropy.figures.figure12)."""
import pandas as pd

from kentropy.figures import figure12, save
from kentropy.logs import log_to

with log_to(snakemake.log[0]):
    save(figure12(pd.read_parquet(snakemake.input[0]), snakemake.params.runs, snakemake.params.baseline), list(snakemake.output))

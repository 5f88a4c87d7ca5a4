"""Figure 11 from the continual table (kentropy.figures.figure11)."""
import pandas as pd

from kentropy.figures import figure11, save
from kentropy.logs import log_to

with log_to(snakemake.log[0]):
    save(figure11(pd.read_parquet(snakemake.input[0]), snakemake.params.baseline), list(snakemake.output))

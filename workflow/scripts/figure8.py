"""Figure 8 from results/tables/entropy.parquet."""

import pandas as pd

from kentropy.figures import figure8, save
from kentropy.logs import log_to

with log_to(snakemake.log[0]):
    save(figure8(pd.read_parquet(snakemake.input[0])), list(snakemake.output))

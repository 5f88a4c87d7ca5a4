"""Figure 11 from the continual table (kentropy.figures.figure11)."""

import pandas as pd

from kentropy.figures import figure11, save
from kentropy.logs import log_to
from kentropy.metrics import reported

with log_to(snakemake.log[0]):
    save(
        figure11(reported(pd.read_parquet(snakemake.input[0]), snakemake.params.score), snakemake.params.baseline),
        list(snakemake.output),
    )

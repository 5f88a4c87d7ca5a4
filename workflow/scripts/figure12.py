"""Figure 12 from the continual table: one line per continual-training corpus (kentropy.figures.figure12)."""

import pandas as pd

from kentropy.figures import figure12, save
from kentropy.logs import log_to
from kentropy.metrics import reported

with log_to(snakemake.log[0]):
    save(
        figure12(
            reported(pd.read_parquet(snakemake.input[0]), snakemake.params.score),
            snakemake.params.runs,
            snakemake.params.baseline,
        ),
        list(snakemake.output),
    )

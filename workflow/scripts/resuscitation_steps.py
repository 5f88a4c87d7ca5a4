"""Figure 14: A and F across checkpoint steps, the originals and one resuscitated variant."""

import pandas as pd

from kentropy.figures import resuscitation_across_steps, save
from kentropy.logs import log_to

with log_to(snakemake.log[0]):
    save(
        resuscitation_across_steps(pd.read_parquet(snakemake.input[0]), snakemake.params.variant),
        list(snakemake.output),
    )

"""Figure 14 (acquisition) or 15 (forgetting) across checkpoint steps, a line per variant."""
import pandas as pd

from kentropy.figures import resuscitation_steps, save
from kentropy.logs import log_to

with log_to(snakemake.log[0]):
    save(resuscitation_steps(pd.read_parquet(snakemake.input[0]), snakemake.params.metric), list(snakemake.output))

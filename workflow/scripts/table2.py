"""Table 2 (runs x checkpoint steps) as Markdown and CSV (kentropy.figures.table2)."""
import pandas as pd

from kentropy.figures import table2
from kentropy.io import atomic_file
from kentropy.logs import log_to

with log_to(snakemake.log[0]):
    table = table2(pd.read_parquet(snakemake.input[0]))
    with atomic_file(snakemake.output.csv) as tmp:
        table.to_csv(tmp)
    with atomic_file(snakemake.output.markdown) as tmp:
        tmp.write_text(table.reset_index().to_markdown(index=False, floatfmt=".3f") + "\n")

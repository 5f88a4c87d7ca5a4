"""Table 2 (runs x checkpoint steps) as Markdown and CSV, with the paper's values in brackets when the
config reproduces a paper experiment (kentropy.tables)."""

import pandas as pd

from kentropy.io import atomic_file
from kentropy.logs import log_to
from kentropy.metrics import reported
from kentropy.paper import paper_table2
from kentropy.tables import table2, table2_markdown

with log_to(snakemake.log[0]):
    table = table2(reported(pd.read_parquet(snakemake.input[0]), snakemake.params.score))
    paper = paper_table2(snakemake.params.paper) if snakemake.params.paper else None
    with atomic_file(snakemake.output.csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_file(snakemake.output.markdown) as tmp:
        tmp.write_text(table2_markdown(table, paper))

"""Table 2 (runs x checkpoint steps) as Markdown and CSV, with the baseline's forgetting-curve exponent
beside A and F, and the paper's values in brackets when the config reproduces a paper experiment
(kentropy.analysis.continual_tables)."""

from kentropy.analysis.continual_tables import table2, table2_markdown
from kentropy.analysis.outcomes import reported
from kentropy.analysis.paper import paper_table2
from kentropy.core.io import atomic_file, table_reader
from kentropy.core.logs import log_to

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]):
    score = snakemake.params.score
    table = table2(reported(read_input(snakemake.input.continual), score),
                   reported(read_input(snakemake.input.fits), score))  # fmt: skip
    paper = paper_table2(snakemake.params.paper) if snakemake.params.paper else None
    with atomic_file(snakemake.output.csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_file(snakemake.output.markdown) as tmp:
        tmp.write_text(table2_markdown(table, paper))

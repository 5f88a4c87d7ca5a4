"""Knowledge entropy, acquisition and forgetting per resuscitation variant -> Parquet + Markdown."""

import re
from pathlib import Path

import pandas as pd

from kentropy.figures import resuscitation_table
from kentropy.io import atomic_file
from kentropy.logs import log_to
from kentropy.metrics import reported

with log_to(snakemake.log[0]):
    parts = []
    for path in snakemake.input.entropy:
        table = pd.read_parquet(path)
        variant = re.fullmatch(r"step\d+(?:-(.+))?", Path(path).name.removesuffix(".parquet"))[1]
        parts.append(table.assign(variant=variant or "original"))
    table = resuscitation_table(
        pd.concat(parts, ignore_index=True),
        reported(pd.read_parquet(snakemake.input.continual), snakemake.params.score),
        snakemake.params.runs,
    )
    with atomic_file(snakemake.output.parquet) as tmp:
        table.to_parquet(tmp, index=False)
    wide = table.melt(
        id_vars=["model", "run", "variant", "step"], value_vars=["knowledge_entropy", "A", "F"], var_name="quantity"
    ).pivot_table(index=["model", "run", "variant", "quantity"], columns="step", values="value", sort=False)
    with atomic_file(snakemake.output.markdown) as tmp:
        tmp.write_text(wide.reset_index().to_markdown(index=False, floatfmt=".3f") + "\n")

"""The baseline run's retention curves from every checkpoint (``train_step``: the continual-training step
at which the probes were scored), its forgetting curves after each item's last injection, and their
decay-exponent fits (kentropy.analysis.forgetting), each with its key columns, in three tables."""

import pandas as pd

from kentropy.analysis.forgetting import FIT_MISSING, curve_points, fit, item_curves, retention_scores
from kentropy.core.io import table_reader, write_table
from kentropy.core.layout import with_keys
from kentropy.core.logs import log_to
from kentropy.sources.fictional_knowledge import ALL

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]) as log:
    tables = {"retention": [], "curves": [], "fits": []}
    for path, manifest, keys in zip(snakemake.input.scores, snakemake.input.manifests, snakemake.params.table_keys):
        probes = read_input(path)
        curves = item_curves(probes, read_input(manifest))
        tables["retention"].append(with_keys(retention_scores(probes).rename(columns={"step": "train_step"}), **keys))
        tables["curves"].append(with_keys(curve_points(curves), **keys))
        tables["fits"].append(with_keys(fit(curves), **keys))
    write_table(pd.concat(tables["retention"], ignore_index=True), snakemake.output.retention)
    write_table(pd.concat(tables["curves"], ignore_index=True), snakemake.output.curves)
    fits = pd.concat(tables["fits"], ignore_index=True)
    write_table(fits, snakemake.output.fits, missing=FIT_MISSING)
    log.info("\n%s", fits[(fits.split == ALL) & (fits.kind == ALL)].to_string())

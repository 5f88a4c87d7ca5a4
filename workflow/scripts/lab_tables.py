"""The lab's tables (kentropy.analysis.lab_tables, docs/lab.md): lab.parquet, each trajectory's slopes, each cell's
verdict and the main effects, and their markdown."""

import numpy as np
import pandas as pd

from kentropy.analysis import lab_tables as lab_analysis
from kentropy.core.io import atomic_file, table_reader, write_table
from kentropy.core.layout import model_keys
from kentropy.core.logs import log_to
from kentropy.measurement.meters import KNOWLEDGE_ENTROPY

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]) as log:
    cells = lab_analysis.cell_table(snakemake.config)
    entropy = read_input(snakemake.input.entropy)
    table = lab_analysis.lab_table(entropy, cells)
    totals = cells.set_index("model").total_steps
    whole = table[(table.metric == KNOWLEDGE_ENTROPY) & table.layer.isna()]
    measured = whole.set_index(["model", "trajectory", "step"])
    rows = []
    for name, path in zip(snakemake.params.trajectories, snakemake.input.sums, strict=True):
        keys = model_keys(name, snakemake.config["seed"])
        steps = snakemake.params.steps[name]
        sums = np.load(path)
        row = lab_analysis.trajectory_slopes(keys["model"], keys["trajectory"], steps, sums, int(totals[keys["model"]]))
        # The bootstrap's knowledge entropy (unpadded, one document at a time) must be the meter's.
        want = measured.loc[[(keys["model"], keys["trajectory"], s) for s in steps]].value.to_numpy()
        worst = float(np.max(np.abs(lab_analysis.lab.knowledge_entropy_from_documents(sums) - want)))
        if worst > lab_analysis.SUMS_TOLERANCE:
            raise lab_analysis.LabError(f"{path}: knowledge entropy from per-document sums is {worst:.2e} nats off "
                                        "the measure_entropy table's; redo both")  # fmt: skip
        rows.append(row)
        log.info("%s: late slope %+.4f [%+.4f, %+.4f]", name, row["late_slope"], row["late_low"], row["late_high"])
    slopes = pd.DataFrame(rows)
    decisions = lab_analysis.cell_decisions(slopes, cells)
    effects = lab_analysis.main_effects(slopes, cells)
    write_table(table, snakemake.output.table)
    write_table(slopes, snakemake.output.slopes)
    write_table(decisions, snakemake.output.cells)
    write_table(effects, snakemake.output.effects)
    cpu = f"Tables written on {lab_analysis.cpu_model()}"
    with atomic_file(snakemake.output.markdown) as tmp:
        tmp.write_text(lab_analysis.effects_markdown(effects, decisions, cpu))
    for r in decisions.itertuples():
        log.info("%s: %s", r.model, r.decision)

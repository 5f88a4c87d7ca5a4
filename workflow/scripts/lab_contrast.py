"""The lab's continual contrast (kentropy.analysis.lab_tables.contrast_table, docs/lab.md): acquisition and forgetting
of a decaying cell against its twin, and their markdown."""

from kentropy.analysis import lab_tables as lab_analysis
from kentropy.analysis.continual_tables import totals
from kentropy.analysis.outcomes import reported
from kentropy.core.io import atomic_file, table_reader, write_table
from kentropy.core.logs import log_to

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]) as log:
    cells = read_input(snakemake.input.cells).set_index("model")
    decays = {m: cells.decision[m] == "decays" for m in snakemake.params.pair}
    if sorted(decays.values()) != [False, True]:
        raise lab_analysis.LabError(f"the contrast needs one decaying cell and one that does not, got {decays}")
    decaying = next(m for m, d in decays.items() if d)
    twin = next(m for m, d in decays.items() if not d)
    runs = totals(reported(read_input(snakemake.input.continual), snakemake.params.score))
    table = lab_analysis.contrast_table(runs, decaying, twin)
    write_table(table, snakemake.output.table)
    with atomic_file(snakemake.output.markdown) as tmp:
        tmp.write_text(lab_analysis.contrast_markdown(table, f"Tables written on {lab_analysis.cpu_model()}"))
    for r in table[table.position == "all"].itertuples():
        log.info("%s: %s - %s = %+.2f [%+.2f, %+.2f]", r.quantity, decaying, twin, r.difference, r.ci_low, r.ci_high)

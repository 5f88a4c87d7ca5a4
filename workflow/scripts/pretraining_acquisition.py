"""Per fact and checkpoint, the object's log-probability beside its exposures and the steps since the last one,
and the forgetting curves' fit of both (kentropy.analysis.fact_tables)."""

from kentropy.analysis.fact_tables import acquisition_fits, pretraining_acquisition
from kentropy.analysis.forgetting import FIT_MISSING
from kentropy.core.io import table_reader, write_table
from kentropy.core.logs import log_to

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]) as log:
    table = pretraining_acquisition(read_input(snakemake.input.qa), read_input(snakemake.input.exposure))
    write_table(table, snakemake.output.table, missing=("since",))
    fits = acquisition_fits(table)
    write_table(fits, snakemake.output.fits, missing=FIT_MISSING)
    log.info("\n%s", fits.to_string())

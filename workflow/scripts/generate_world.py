"""Write the generated tiny world (corpora, fictional knowledge, questions)."""

from pathlib import Path

from kentropy.logs import log_to
from kentropy.world import write_world

with log_to(snakemake.log[0]) as log:
    write_world(Path(snakemake.output.pretrain).parent, **snakemake.params.world)
    log.info("world written to %s", Path(snakemake.output.pretrain).parent)

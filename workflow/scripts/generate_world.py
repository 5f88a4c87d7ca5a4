"""Write the generated tiny world (corpora, fictional knowledge, questions), a file per role of
kentropy.core.layout.WORLD_FILES."""

from kentropy.core.layout import WORLD_FILES
from kentropy.core.logs import log_to
from kentropy.sources.world import write_world

with log_to(snakemake.log[0]) as log:
    write_world({role: snakemake.output[role] for role in WORLD_FILES}, **snakemake.params.world)
    log.info("world written: %s", ", ".join(snakemake.output))

"""Write the generated tiny world (corpora, fictional knowledge, questions), a file per role of
kentropy.layout.WORLD_FILES."""

from kentropy.layout import WORLD_FILES
from kentropy.logs import log_to
from kentropy.world import write_world

with log_to(snakemake.log[0]) as log:
    write_world({role: snakemake.output[role] for role in WORLD_FILES}, **snakemake.params.world)
    log.info("world written: %s", ", ".join(snakemake.output))

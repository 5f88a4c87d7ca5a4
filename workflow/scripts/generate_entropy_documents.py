"""Write the generated world's entropy documents (kentropy.sources.world.write_entropy_documents)."""

from kentropy.core.logs import log_to
from kentropy.sources.world import write_entropy_documents

with log_to(snakemake.log[0]) as log:
    write_entropy_documents(snakemake.output[0], **snakemake.params.world)
    log.info("%d entropy documents: %s", snakemake.params.world["n_entropy_documents"], snakemake.output[0])

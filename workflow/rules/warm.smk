# The warm start of local script jobs (kentropy.pipeline.warm_hooks, kentropy.pipeline.warm): one fork server per
# Snakemake run, and the script command that asks it for a job. Included by the Snakefile, and alone by
# tests/test_warm.py.
from kentropy.pipeline.warm_hooks import WarmStart

WARM = WarmStart(workflow)

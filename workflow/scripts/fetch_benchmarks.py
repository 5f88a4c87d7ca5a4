"""Make the downstream tasks available offline: local task YAMLs, or the lm-eval datasets in the HF cache."""
import json
import os
from pathlib import Path

from kentropy.offline import hf_env

os.environ.update(hf_env(snakemake.params.hf_cache, offline=False))  # this localrule may download

from kentropy.downstream import prefetch, write_local_tasks  # noqa: E402
from kentropy.io import atomic_dir  # noqa: E402
from kentropy.logs import log_to  # noqa: E402

cfg = snakemake.params.downstream
final = Path(snakemake.output[0]).resolve()
with log_to(snakemake.log[0]) as log, atomic_dir(final) as tmp:
    if cfg["source"] == "generated":
        tasks, include_path = write_local_tasks(snakemake.input.questions, tmp, data_dir=final), str(final)
        counts = {task: len((tmp / f"{task}.jsonl").read_text().splitlines()) for task in tasks}
    else:
        tasks, include_path = cfg["tasks"], None
        counts = prefetch(list(tasks))
    (tmp / "tasks.json").write_text(json.dumps({"tasks": tasks, "include_path": include_path, "documents": counts}, indent=1))
    log.info("tasks ready: %s", counts)

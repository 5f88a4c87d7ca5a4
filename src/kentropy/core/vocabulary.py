"""Names several stages share, owned here so that each stage imports them downwards: the probe-score
definitions (computed by kentropy.evaluation.probes, logged by the trainer, reported by the analysis) and the
columns of a per-probe score file (written by the training job, read by kentropy.analysis.forgetting)."""

#: The probe-score definitions (kentropy.evaluation.probes), a column each in probes.parquet.
SCORES = ("per_token", "released")
#: Columns of a per-probe retention file written by the training job (kentropy.training.continual).
PROBE_COLUMNS = ["step", "split", "paragraph", "kind", "probe", *SCORES]

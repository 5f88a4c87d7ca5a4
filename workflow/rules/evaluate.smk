# Probes of the injected knowledge and downstream benchmarks, for every model state (before, after each run).
localrules:
    fetch_benchmarks,


rule fetch_benchmarks:
    # Writes the local task YAMLs (generated) or downloads the benchmarks into the HF cache (lm_eval),
    # so evaluation jobs on offline compute nodes find everything.
    input:
        questions=branch(config["downstream"]["source"] == "generated", then=L.world("questions")),
    output:
        directory(L.benchmarks()),
    log:
        L.log("fetch_benchmarks"),
    conda:
        ENV
    params:
        code=code("fetch_benchmarks.py"),
        downstream={k: EVALUATION["downstream"][k] for k in ("source", "tasks")},  # what it fetches
    script:
        "../scripts/fetch_benchmarks.py"


rule evaluate:
    # Probes and downstream benchmarks of one checkpoint before training, in one job: the model is loaded
    # once, and the process start-up (torch and transformers imports), most of a tiny model's evaluation
    # time, is paid once. A change to either section's settings reruns both halves of the job. The model
    # a run trained is evaluated by its training job, with the same code (kentropy.evaluation.model_state).
    input:
        model=variant_checkpoint,
        paraphrase=L.knowledge("paraphrase"),
        once=L.knowledge("once"),
        benchmarks=L.benchmarks(),
    output:
        probes=L.evaluation("{model}", "{step}", "{variant}", "before", "probes"),
        downstream=L.evaluation("{model}", "{step}", "{variant}", "before", "downstream"),
    log:
        L.log("evaluate", "{model}", "step{step}", "{variant}", "before"),
    benchmark:
        L.benchmark("evaluate", "{model}", "step{step}", "{variant}", "before")
    conda:
        ENV
    threads: JOB_THREADS
    resources:
        gpu=model_gpus,
        cpus_per_gpu=CLUSTER["cpus_per_gpu"],
        mem_mb=job_memory(model_gpus),
        runtime=job_runtime("probe", "downstream"),
    params:
        code=code("evaluate.py"),
        producers=producers,
        local_checkpoint=local_fingerprint,
        evaluation=EVALUATION,
    script:
        "../scripts/evaluate.py"


rule continual_table:
    input:
        probes=evaluation_files("probes"),
        downstream=evaluation_files("downstream"),
    output:
        report(L.table("continual.parquet"), caption="../report/continual_table.rst", category="Tables"),
    log:
        L.log("continual_table"),
    conda:
        ENV
    params:
        code=code("continual_table.py"),
        producers=producers,
        runs=run_keys(),
    script:
        "../scripts/continual_table.py"


rule retention_table:
    # Retention curves, forgetting curves and their decay-exponent fits (kentropy.analysis.forgetting) in one job:
    # all three read the same per-probe scores.
    input:
        scores=[path for path, _, _ in retention_curves()],
        manifests=[manifest for _, manifest, _ in retention_curves()],
    output:
        retention=L.table("retention.parquet"),
        curves=L.table("forgetting_curves.parquet"),
        fits=L.table("forgetting.parquet"),
    log:
        L.log("retention_table"),
    conda:
        ENV
    params:
        code=code("retention_table.py"),
        producers=producers,
        table_keys=[keys for _, _, keys in retention_curves()],
    script:
        "../scripts/retention_table.py"


rule correlations:
    input:
        unpack(correlation_inputs),
    output:
        summary=report(L.table("correlations.parquet"), caption="../report/correlations.rst", category="Tables"),
        per_trajectory=L.table("correlations_by_trajectory.parquet"),
    log:
        L.log("correlations"),
    conda:
        ENV
    params:
        code=code("correlations.py"),
        producers=producers,
        seed=config["seed"],
        score=PROBE_SCORE,
        size=FACTS.size if FACTS else None,
    script:
        "../scripts/correlations.py"


rule continual:
    input:
        L.table("continual.parquet"),
        L.table("correlations.parquet"),

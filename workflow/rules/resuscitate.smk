# Resuscitation (Algorithm 1): amplified copies of checkpoints, which then flow through the entropy,
# continual-training and evaluation rules as {variant} values next to "original".


rule resuscitate:
    input:
        checkpoint=checkpoint_dir,
        coef=L.entropy("{model}", "{step}", "original", ".coef.npy"),
    output:
        directory(L.resuscitated_checkpoint("{model}", "{step}", "{variant}")),
    log:
        L.log("resuscitate", "{model}", "step{step}", "{variant}"),
    benchmark:
        L.benchmark("resuscitate", "{model}", "step{step}", "{variant}")
    wildcard_constraints:
        variant="|".join(resuscitation_variants()) or "(?!)",
    conda:
        ENV
    resources:
        mem_mb=job_memory(model_gpus),  # the whole model in host memory: as much as its GPU jobs get
        runtime=job_runtime("resuscitate"),
    params:
        code=code("resuscitate.py"),
        producers=producers,
        local_checkpoint=local_fingerprint,
    script:
        "../scripts/resuscitate.py"


rule resuscitation_table:
    input:
        entropy=resuscitation_entropy_tables(),
        continual=L.table("continual.parquet"),
    output:
        parquet=L.table("resuscitation.parquet"),
        markdown=report(L.table("resuscitation.md"), caption="../report/resuscitation.rst", category="Resuscitation"),
    log:
        L.log("resuscitation_table"),
    conda:
        ENV
    params:
        code=code("resuscitation_table.py"),
        producers=producers,
        runs=list(RESUSCITATION.runs) if RESUSCITATION else [],
        score=PROBE_SCORE,
    script:
        "../scripts/resuscitation_table.py"


rule resuscitation:
    input:
        rules.resuscitation_table.output,
        group_figures("resuscitation_figures"),

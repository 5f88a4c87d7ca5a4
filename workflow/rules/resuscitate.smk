# Resuscitation (Algorithm 1): amplified copies of checkpoints, which then flow through the entropy,
# continual-training and evaluation rules as {variant} values next to "original".


rule resuscitate:
    input:
        checkpoint=checkpoint_dir,
        coef="results/entropy/{model}/step{step}.coef.npy",
    output:
        directory("resources/checkpoints/{model}/step{step}-resus-p{p}-q{q}"),
    log:
        "logs/resuscitate/{model}/step{step}-resus-p{p}-q{q}.log",
    benchmark:
        "benchmarks/resuscitate/{model}/step{step}-resus-p{p}-q{q}.tsv"
    wildcard_constraints:
        p=r"\d+",
        q=r"\d+(?:\.\d+)?",
    conda:
        ENV
    resources:
        mem_mb=job_memory(model_gpus),  # the whole model in host memory: as much as its GPU jobs get
        runtime=job_runtime("resuscitate"),
    script:
        "../scripts/resuscitate.py"


rule resuscitation_table:
    input:
        entropy=resuscitation_entropy_tables(),
        continual="results/tables/continual.parquet",
    output:
        parquet="results/tables/resuscitation.parquet",
        markdown=report(
            "results/tables/resuscitation.md", caption="../report/resuscitation.rst", category="Resuscitation"
        ),
    log:
        "logs/figures/resuscitation_table.log",
    conda:
        ENV
    params:
        runs=RESUSCITATION["runs"] if RESUSCITATION else [],
        score=PROBE_SCORE,
    script:
        "../scripts/resuscitation_table.py"


rule figure5:
    input:
        "results/tables/resuscitation.parquet",
    output:
        report(
            expand("results/figures/figure5.{fmt}", fmt=FORMATS),
            caption="../report/figure5.rst",
            category="Resuscitation",
        ),
    log:
        "logs/figures/figure5.log",
    conda:
        ENV
    params:
        axis="q",
        fixed=RESUSCITATION["p_fixed"] if RESUSCITATION else None,
        steps=RESUSCITATION["steps"] if RESUSCITATION else [],
    script:
        "../scripts/resuscitation_grid.py"


rule figure13:
    input:
        "results/tables/resuscitation.parquet",
    output:
        report(
            expand("results/figures/figure13.{fmt}", fmt=FORMATS),
            caption="../report/figure13.rst",
            category="Resuscitation",
        ),
    log:
        "logs/figures/figure13.log",
    conda:
        ENV
    params:
        axis="p",
        fixed=RESUSCITATION["q_fixed"] if RESUSCITATION else None,
        steps=RESUSCITATION["steps"] if RESUSCITATION else [],
    script:
        "../scripts/resuscitation_grid.py"


rule figure14:
    input:
        "results/tables/resuscitation.parquet",
    output:
        report(
            expand("results/figures/figure14.{fmt}", fmt=FORMATS),
            caption="../report/figure14.rst",
            category="Resuscitation",
        ),
    log:
        "logs/figures/figure14.log",
    conda:
        ENV
    params:
        variant=variant_name(*figure14_variant(RESUSCITATION)) if RESUSCITATION else None,
    script:
        "../scripts/resuscitation_steps.py"


rule figure15:
    input:
        "results/tables/resuscitation.parquet",
    output:
        report(
            expand("results/figures/figure15.{fmt}", fmt=FORMATS),
            caption="../report/figure15.rst",
            category="Resuscitation",
        ),
    log:
        "logs/figures/figure15.log",
    conda:
        ENV
    params:
        axis="q",
        fixed=RESUSCITATION["p_fixed"] if RESUSCITATION else None,
        steps=RESUSCITATION.get("figure15_steps", RESUSCITATION["steps"]) if RESUSCITATION else [],
    script:
        "../scripts/resuscitation_grid.py"


rule resuscitation:
    input:
        rules.resuscitation_table.output,
        rules.figure5.output,
        rules.figure13.output,
        rules.figure14.output,
        rules.figure15.output,

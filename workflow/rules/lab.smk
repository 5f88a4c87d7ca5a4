# The lab (docs/lab.md, kentropy.analysis.lab_design, kentropy.analysis.lab_tables): each trajectory's per-document sums (the
# bootstrap's input), the lab's tables and its figures.


rule lab_document_sums:
    input:
        checkpoints=trajectory_checkpoints,
        corpus=L.entropy_corpus(config["entropy"]["corpus"]["name"]),
    output:
        L.document_sums("{model}"),
    log:
        L.log("lab_document_sums", "{model}"),
    benchmark:
        L.benchmark("lab_document_sums", "{model}")
    conda:
        ENV
    threads: JOB_THREADS
    resources:
        gpu=model_gpus,
        cpus_per_gpu=CLUSTER["cpus_per_gpu"],
        mem_mb=job_memory(model_gpus),
        runtime=job_runtime("measure_entropy"),
    params:
        code=code("lab_document_sums.py"),
        producers=producers,
        steps=lambda wildcards: sorted(MODELS[wildcards.model]["steps"]),
        entropy=PLAN.entropy.to_dict(),
    script:
        "../scripts/lab_document_sums.py"


# The analysis exists in a lab config only (its `lab` section): its cells are the config's pretrained models.
if "lab" in config:

    rule lab_tables:
        input:
            entropy=L.table("entropy.parquet"),
            sums=[L.document_sums(t) for t in TRAJECTORIES],
        output:
            table=L.table("lab.parquet"),
            slopes=L.table("lab_slopes.parquet"),
            cells=L.table("lab_cells.parquet"),
            effects=L.table("lab_effects.parquet"),
            markdown=report(L.table("lab_effects.md"), caption="../report/lab_effects.rst", category="Lab"),
        log:
            L.log("lab_tables"),
        conda:
            ENV
        params:
            code=code("lab_tables.py"),
            producers=producers,
            trajectories=list(TRAJECTORIES),
            steps={t: sorted(spec["steps"]) for t, spec in MODELS.items()},
        script:
            "../scripts/lab_tables.py"

    rule lab:
        input:
            rules.lab_tables.output,
            group_figures("lab_figures"),

    # The continual contrast (docs/lab.md): the two models that continue training (`python -m
    # kentropy.analysis.lab_design --contrast-from`), the decaying one told apart by the lab's verdicts.
    CONTRAST = sorted(m for m, spec in config["models"].items() if spec.get("continual_steps"))
    if len(CONTRAST) == 2:

        rule lab_contrast:
            input:
                continual=L.table("continual.parquet"),
                cells=rules.lab_tables.output.cells,
            output:
                table=L.table("lab_contrast.parquet"),
                markdown=report(L.table("lab_contrast.md"), caption="../report/lab_contrast.rst", category="Lab"),
            log:
                L.log("lab_contrast"),
            conda:
                ENV
            params:
                code=code("lab_contrast.py"),
                producers=producers,
                pair=CONTRAST,
                score=PROBE_SCORE,
            script:
                "../scripts/lab_contrast.py"

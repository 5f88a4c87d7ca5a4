# Knowledge, attention and next-token entropy per starting checkpoint (original or resuscitated), and the table.


rule measure_entropy:
    input:
        checkpoint=variant_checkpoint,
        corpus=L.entropy_corpus(config["entropy"]["corpus"]["name"]),
    output:
        table=L.entropy("{model}", "{step}", "{variant}"),
        coef=L.entropy("{model}", "{step}", "{variant}", ".coef.npy"),
    log:
        L.log("measure_entropy", "{model}", "step{step}", "{variant}"),
    benchmark:
        L.benchmark("measure_entropy", "{model}", "step{step}", "{variant}")
    conda:
        ENV
    threads: JOB_THREADS
    resources:
        gpu=model_gpus,
        cpus_per_gpu=CLUSTER["cpus_per_gpu"],
        mem_mb=job_memory(model_gpus),
        runtime=job_runtime("measure_entropy"),
    params:
        code=code("measure_entropy.py"),
        producers=producers,
        local_checkpoint=local_fingerprint,
        entropy=PLAN.entropy.to_dict(),
    script:
        "../scripts/measure_entropy.py"


rule entropy:
    input:
        L.table("entropy.parquet"),


rule entropy_table:
    input:
        entropy_tables(),
    output:
        report(L.table("entropy.parquet"), caption="../report/entropy_table.rst", category="Tables"),
    log:
        L.log("entropy_table"),
    conda:
        ENV
    params:
        code=code("entropy_table.py"),
        producers=producers,
        sources=hub_sources(),
        captions=METRIC_CAPTIONS,  # read by the report's caption only
    script:
        "../scripts/entropy_table.py"

# Knowledge, attention and next-token entropy per checkpoint, and the aggregated table.


rule measure_entropy:
    # {checkpoint} is step{step} or step{step}-{variant}: originals and resuscitated copies alike.
    input:
        checkpoint=entropy_checkpoint,
        corpus=entropy_corpus_file(),
    output:
        table="results/entropy/{model}/{checkpoint}.parquet",
        coef="results/entropy/{model}/{checkpoint}.coef.npy",
    log:
        "logs/measure_entropy/{model}/{checkpoint}.log",
    benchmark:
        "benchmarks/measure_entropy/{model}/{checkpoint}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        gpu=model_gpus,
        cpus_per_gpu=CLUSTER["cpus_per_gpu"],
        mem_mb=job_memory(model_gpus),
        runtime=job_runtime("measure_entropy"),
    params:
        entropy=canonical(config["entropy"], drop=SPEED_KEYS),
    script:
        "../scripts/measure_entropy.py"


rule entropy:
    input:
        "results/tables/entropy.parquet",


rule entropy_table:
    input:
        entropy_tables(),
    output:
        report("results/tables/entropy.parquet", caption="../report/entropy_table.rst", category="Tables"),
    log:
        "logs/entropy_table/entropy_table.log",
    conda:
        ENV
    params:
        sources=hub_sources(),
    script:
        "../scripts/entropy_table.py"

# Knowledge, attention and next-token entropy per checkpoint, and the aggregated table.


rule measure_entropy:
    input:
        checkpoint=checkpoint_dir,
        corpus=entropy_corpus_file(),
    output:
        table="results/entropy/{model}/step{step}.parquet",
        coef="results/entropy/{model}/step{step}.coef.npy",
    params:
        entropy=config["entropy"],
    threads: 2
    resources:
        gpu=model_gpus,
    log:
        "logs/measure_entropy/{model}/step{step}.log",
    benchmark:
        "benchmarks/measure_entropy/{model}/step{step}.tsv"
    script:
        "../scripts/measure_entropy.py"


rule entropy:
    input:
        "results/tables/entropy.parquet",


rule entropy_table:
    input:
        entropy_tables(),
    output:
        "results/tables/entropy.parquet",
    log:
        "logs/entropy_table/entropy_table.log",
    script:
        "../scripts/entropy_table.py"

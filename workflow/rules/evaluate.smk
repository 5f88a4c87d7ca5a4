# Probes of the injected knowledge and downstream benchmarks, for every model state (before, after each run).


localrules:
    fetch_benchmarks,


rule fetch_benchmarks:
    # Writes the local task YAMLs (generated) or downloads the benchmarks into the HF cache (lm_eval),
    # so evaluation jobs on offline compute nodes find everything.
    input:
        questions=branch(config["downstream"]["source"] == "generated", then="resources/world/questions.jsonl"),
    output:
        directory("resources/benchmarks"),
    log:
        "logs/fetch_benchmarks/fetch_benchmarks.log",
    conda:
        ENV
    params:
        downstream=canonical(config["downstream"], drop=SPEED_KEYS),
    script:
        "../scripts/fetch_benchmarks.py"


rule probe:
    input:
        model=state_model,
        paraphrase="resources/knowledge/fictional_paraphrase.json",
        once="resources/knowledge/fictional_once.json",
    output:
        "results/evaluation/{model}/step{step}/{variant}/{state}/probes.parquet",
    log:
        "logs/probe/{model}/step{step}/{variant}/{state}.log",
    benchmark:
        "benchmarks/probe/{model}/step{step}/{variant}/{state}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        gpu=model_gpus,
        cpus_per_gpu=CLUSTER["cpus_per_gpu"],
        mem_mb=job_memory(model_gpus),
        runtime=job_runtime("probe"),
    params:
        probe=canonical(config["probe"], drop=SPEED_KEYS | {"score"}),
        released=RELEASED_EVALUATOR,
    script:
        "../scripts/probe.py"


rule downstream:
    input:
        model=state_model,
        benchmarks="resources/benchmarks",
    output:
        "results/evaluation/{model}/step{step}/{variant}/{state}/downstream.parquet",
    log:
        "logs/downstream/{model}/step{step}/{variant}/{state}.log",
    benchmark:
        "benchmarks/downstream/{model}/step{step}/{variant}/{state}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        gpu=model_gpus,
        cpus_per_gpu=CLUSTER["cpus_per_gpu"],
        mem_mb=job_memory(model_gpus),
        runtime=job_runtime("downstream"),
    params:
        downstream=canonical(config["downstream"], drop=SPEED_KEYS),
    script:
        "../scripts/downstream.py"


rule continual_table:
    input:
        probes=evaluation_files("probes"),
        downstream=evaluation_files("downstream"),
    output:
        report("results/tables/continual.parquet", caption="../report/continual_table.rst", category="Tables"),
    log:
        "logs/continual_table/continual_table.log",
    conda:
        ENV
    script:
        "../scripts/continual_table.py"


rule correlations:
    input:
        entropy="results/tables/entropy.parquet",
        continual="results/tables/continual.parquet",
    output:
        report("results/tables/correlations.parquet", caption="../report/correlations.rst", category="Tables"),
    log:
        "logs/correlations/correlations.log",
    conda:
        ENV
    params:
        seed=config["seed"],
        score=PROBE_SCORE,
    script:
        "../scripts/correlations.py"


rule continual:
    input:
        "results/tables/continual.parquet",
        "results/tables/correlations.parquet",

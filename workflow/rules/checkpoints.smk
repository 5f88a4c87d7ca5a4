# Checkpoints in save_pretrained format under resources/checkpoints/{model}/step{step}/, whatever the source.


rule train_tokenizer:
    input:
        "resources/world/pretrain.parquet",
    output:
        directory("resources/tokenizers/{model}"),
    log:
        "logs/train_tokenizer/{model}.log",
    benchmark:
        "benchmarks/train_tokenizer/{model}.tsv"
    wildcard_constraints:
        model=models_with_source("pretrain"),
    conda:
        ENV
    params:
        vocab_size=config.get("pretrain", {}).get("tokenizer_vocab_size"),
    script:
        "../scripts/train_tokenizer.py"


rule pretrain_tiny:
    # One job per checkpoint: it resumes from the previous configured step, so the chain is resumable.
    input:
        unpack(previous_checkpoint),
    output:
        checkpoint=directory("resources/checkpoints/{model}/step{step}"),
        loss="results/pretrain/{model}/step{step}.loss.parquet",
    log:
        "logs/pretrain_tiny/{model}/step{step}.log",
    benchmark:
        "benchmarks/pretrain_tiny/{model}/step{step}.tsv"
    wildcard_constraints:
        model=models_with_source("pretrain"),
    conda:
        ENV
    threads: 2
    params:
        pretrain=canonical(config.get("pretrain")),
        seed=config["seed"],
    script:
        "../scripts/pretrain_tiny.py"


# Compute nodes are often offline: downloads run on the submitting host.
localrules:
    fetch_checkpoint,


rule fetch_checkpoint:
    output:
        directory("resources/checkpoints/{model}/step{step}"),
    log:
        "logs/fetch_checkpoint/{model}/step{step}.log",
    benchmark:
        "benchmarks/fetch_checkpoint/{model}/step{step}.tsv"
    wildcard_constraints:
        model=models_with_source("hf"),
    conda:
        ENV
    params:
        spec=model_spec,
    script:
        "../scripts/fetch_checkpoint.py"

# Checkpoints in save_pretrained format under resources/checkpoints/{model}/step{step}/, whatever the source.


rule train_tokenizer:
    input:
        "resources/world/pretrain.parquet",
    output:
        directory("resources/tokenizers/{model}"),
    wildcard_constraints:
        model=models_with_source("pretrain"),
    params:
        vocab_size=config.get("pretrain", {}).get("tokenizer_vocab_size"),
    log:
        "logs/train_tokenizer/{model}.log",
    benchmark:
        "benchmarks/train_tokenizer/{model}.tsv"
    script:
        "../scripts/train_tokenizer.py"


rule pretrain_tiny:
    # One job per checkpoint: it resumes from the previous configured step, so the chain is resumable.
    input:
        unpack(previous_checkpoint),
    output:
        checkpoint=directory("resources/checkpoints/{model}/step{step}"),
        loss="results/pretrain/{model}/step{step}.loss.parquet",
    wildcard_constraints:
        model=models_with_source("pretrain"),
    params:
        pretrain=config.get("pretrain"),
        seed=config["seed"],
    threads: 2
    log:
        "logs/pretrain_tiny/{model}/step{step}.log",
    benchmark:
        "benchmarks/pretrain_tiny/{model}/step{step}.tsv"
    script:
        "../scripts/pretrain_tiny.py"


# Compute nodes are often offline: downloads run on the submitting host.
localrules:
    fetch_checkpoint,


rule fetch_checkpoint:
    output:
        directory("resources/checkpoints/{model}/step{step}"),
    wildcard_constraints:
        model=models_with_source("hf"),
    params:
        spec=model_spec,
        hf_cache=config.get("hf_cache"),
    log:
        "logs/fetch_checkpoint/{model}/step{step}.log",
    benchmark:
        "benchmarks/fetch_checkpoint/{model}/step{step}.tsv"
    script:
        "../scripts/fetch_checkpoint.py"

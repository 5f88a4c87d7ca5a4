# Checkpoints in save_pretrained format, whatever the source (kentropy.core.layout: Layout.checkpoint).


rule train_tokenizer:
    input:
        L.world("pretrain"),
    output:
        directory(L.tokenizer("{vocab}")),
    log:
        L.log("train_tokenizer", "vocab{vocab}"),
    benchmark:
        L.benchmark("train_tokenizer", "vocab{vocab}")
    wildcard_constraints:
        vocab=r"\d+",
    conda:
        ENV
    params:
        code=code("train_tokenizer.py"),
        producers=producers,
        vocab_size=lambda wildcards: int(wildcards.vocab),
    script:
        "../scripts/train_tokenizer.py"


rule pretrain_tiny:
    # One job per checkpoint: it resumes from the previous configured step, so the chain is resumable.
    # The chain is the DAG's critical path (each checkpoint's work waits for its segment), so it is
    # scheduled before any other ready job; the other cores take the earlier checkpoints' work meanwhile.
    input:
        unpack(previous_checkpoint),
    output:
        checkpoint=directory(L.pretrained_checkpoint("{model}", "{step}")),
        loss=L.pretrain_loss("{model}", "{step}"),
    log:
        L.log("pretrain_tiny", "{model}", "step{step}"),
    benchmark:
        L.benchmark("pretrain_tiny", "{model}", "step{step}")
    wildcard_constraints:
        model=models_with_source("pretrain"),
    priority: 10
    conda:
        ENV
    threads: JOB_THREADS
    params:
        code=code("pretrain_tiny.py"),
        producers=producers,
        pretraining=pretraining_spec,
        start_step=previous_step,
    script:
        "../scripts/pretrain_tiny.py"


# Compute nodes are often offline: downloads run on the submitting host.
localrules:
    fetch_checkpoint,


rule fetch_checkpoint:
    # Shared by every experiment, and protected: a fetched checkpoint is never rewritten by a rerun.
    output:
        protected(directory(L.hub_checkpoint("{model}", "{step}"))),
    log:
        "logs/fetch_checkpoint/{model}/step{step}.log",
    benchmark:
        "benchmarks/fetch_checkpoint/{model}/step{step}.tsv"
    wildcard_constraints:
        model=models_with_source("hf"),
    conda:
        ENV
    params:
        code=code("fetch_checkpoint.py"),
        spec=model_spec,
        revision=pinned_revision,
    script:
        "../scripts/fetch_checkpoint.py"

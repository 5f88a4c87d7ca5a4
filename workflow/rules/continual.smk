# Continual knowledge learning: fictional knowledge, corpora, the injection stream, DeepSpeed training.


# Downloads run on the submitting host (compute nodes are often offline).
localrules:
    fictional_knowledge,
    continual_corpus,


rule fictional_knowledge:
    input:
        generated=branch(CONTINUAL["knowledge"]["source"] == "generated", then="resources/world/fictional_{split}.json"),
    output:
        "resources/knowledge/fictional_{split}.json",
    log:
        "logs/fictional_knowledge/{split}.log",
    wildcard_constraints:
        split="paraphrase|once",
    conda:
        ENV
    params:
        spec=canonical(CONTINUAL["knowledge"]),
    script:
        "../scripts/fictional_knowledge.py"


rule continual_corpus:
    # Packed with the model's tokenizer, reading (or streaming) only as many documents as the runs need.
    input:
        tokenizer=tokenizer_dir,
        generated=generated_corpus,
    output:
        "resources/continual/{model}/{corpus}.npy",
    log:
        "logs/continual_corpus/{model}/{corpus}.log",
    benchmark:
        "benchmarks/continual_corpus/{model}/{corpus}.tsv"
    conda:
        ENV
    params:
        spec=corpus_spec,
        n_blocks=corpus_blocks,
        seq_len=CONTINUAL["seq_len"],
    script:
        "../scripts/continual_corpus.py"


rule train_stream:
    input:
        blocks=run_blocks,
        tokenizer=tokenizer_dir,
        paraphrase="resources/knowledge/fictional_paraphrase.json",
        once="resources/knowledge/fictional_once.json",
    output:
        tokens="results/streams/{model}/{run}/tokens.npy",
        manifest="results/streams/{model}/{run}/manifest.parquet",
    log:
        "logs/train_stream/{model}/{run}.log",
    benchmark:
        "benchmarks/train_stream/{model}/{run}.tsv"
    conda:
        ENV
    params:
        run=stream_spec,
        n_injections=CONTINUAL["n_injections"],
        seed=config["seed"],
    script:
        "../scripts/train_stream.py"


rule continual_train:
    # A killed job resumes from its latest DeepSpeed checkpoint in work/ (not an output, so it survives).
    input:
        checkpoint=variant_checkpoint,
        stream="results/streams/{model}/{run}/tokens.npy",
        paraphrase="resources/knowledge/fictional_paraphrase.json",
        once="resources/knowledge/fictional_once.json",
    output:
        model=directory("results/continual/{model}/step{step}/{variant}/{run}/model"),
        loss="results/continual/{model}/step{step}/{variant}/{run}/loss.parquet",
        retention="results/continual/{model}/step{step}/{variant}/{run}/retention.parquet",
    log:
        "logs/continual_train/{model}/step{step}/{variant}/{run}.log",
    benchmark:
        "benchmarks/continual_train/{model}/step{step}/{variant}/{run}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        gpu=train_gpus,
        cpus_per_gpu=CLUSTER["cpus_per_gpu"],
        mem_mb=job_memory(train_gpus),
        runtime=train_runtime,
    params:
        run=run_config,
        probe_steps=retention_steps,
        probe_max_length=config["probe"]["max_length"],
        released=json.dumps(RELEASED_EVALUATOR),
        work="results/continual/{model}/step{step}/{variant}/{run}/work",
    script:
        "../scripts/continual_train.py"

# Continual knowledge learning: fictional knowledge, corpora, the injection stream, DeepSpeed training.
# Downloads run on the submitting host (compute nodes are often offline).
localrules:
    fictional_knowledge,
    continual_corpus,


rule fictional_knowledge:
    input:
        generated=branch(
            CONTINUAL["knowledge"]["source"] == "generated", then=lambda wildcards: L.world(wildcards.split)
        ),
    output:
        L.knowledge("{split}"),
    log:
        L.log("fictional_knowledge", "{split}"),
    wildcard_constraints:
        split="|".join(SPLITS),
    conda:
        ENV
    params:
        code=code("fictional_knowledge.py"),
        spec=canonical(CONTINUAL["knowledge"]),
    script:
        "../scripts/fictional_knowledge.py"


rule continual_corpus:
    # Packed with the model's tokenizer, reading (or streaming) only as many documents as the runs need.
    # Temporary: only the streams read it.
    input:
        tokenizer=tokenizer_dir,
        generated=generated_corpus,
    output:
        temp(L.packed_corpus("{model}", "{corpus}")),
    log:
        L.log("continual_corpus", "{model}", "{corpus}"),
    benchmark:
        L.benchmark("continual_corpus", "{model}", "{corpus}")
    conda:
        ENV
    params:
        code=code("continual_corpus.py"),
        producers=producers,
        spec=corpus_spec,
        n_blocks=corpus_blocks,
        seq_len=CONTINUAL["seq_len"],
    script:
        "../scripts/continual_corpus.py"


rule train_stream:
    # The tokens are temporary (deleted once every training job on them is done); the manifest stays.
    input:
        blocks=run_blocks,
        tokenizer=tokenizer_dir,
        paraphrase=L.knowledge("paraphrase"),
        once=L.knowledge("once"),
    output:
        tokens=temp(L.stream("{model}", "{run}", "tokens.npy")),
        manifest=L.stream("{model}", "{run}", "manifest.parquet"),
    log:
        L.log("train_stream", "{model}", "{run}"),
    benchmark:
        L.benchmark("train_stream", "{model}", "{run}")
    conda:
        ENV
    params:
        code=code("train_stream.py"),
        producers=producers,
        run=stream_spec,
    script:
        "../scripts/train_stream.py"


rule continual_train:
    # A killed job resumes from its latest DeepSpeed checkpoint in work/ (not an output, so it survives;
    # removed when the job succeeds), but only into the same run (kentropy.training.continual: run_fingerprint).
    # The job then evaluates the model it trained (probes and benchmarks, kentropy.evaluation.model_state: the evaluate
    # rule's code, on the saved model): a separate job would pay the interpreter and library start-up again,
    # most of a small model's evaluation. The price: a change to the probe or downstream settings reruns
    # the training too. The longest jobs after pretraining: scheduled before shorter ready ones, so none is
    # left to run alone at the end.
    input:
        checkpoint=variant_checkpoint,
        stream=L.stream("{model}", "{run}", "tokens.npy"),
        paraphrase=L.knowledge("paraphrase"),
        once=L.knowledge("once"),
        benchmarks=L.benchmarks(),
    output:
        model=directory(L.training("{model}", "{step}", "{variant}", "{run}", "model")),
        loss=L.training("{model}", "{step}", "{variant}", "{run}", "loss.parquet"),
        retention=L.training("{model}", "{step}", "{variant}", "{run}", "retention.parquet"),
        probes=L.evaluation("{model}", "{step}", "{variant}", "{run}", "probes"),
        downstream=L.evaluation("{model}", "{step}", "{variant}", "{run}", "downstream"),
    log:
        L.log("continual_train", "{model}", "step{step}", "{variant}", "{run}"),
    benchmark:
        L.benchmark("continual_train", "{model}", "step{step}", "{variant}", "{run}")
    priority: 5
    conda:
        ENV
    threads: JOB_THREADS
    resources:
        # one node: gpu, cpus_per_gpu, mem_mb as every GPU job; several: nodes, tasks and GPUs per node, memory
        # per node and `mpi` (the job's command runs once in the allocation and starts its tasks with srun)
        **{k: training_resource(k) for k in TRAINING_RESOURCES},
        runtime=train_runtime,
    params:
        code=code("continual_train.py"),
        producers=producers,
        local_checkpoint=local_fingerprint,
        run=run_spec,
        evaluation=EVALUATION,
        work=L.training("{model}", "{step}", "{variant}", "{run}", "work"),
    script:
        "../scripts/continual_train.py"

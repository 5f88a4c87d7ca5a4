# Knowledge frequency (the `facts` section): closed-book QA and parameter specialization of every original
# checkpoint over a facts file, SMI's fits, and each fact's exposures in a trajectory's data order.


rule measure_facts:
    input:
        checkpoint=checkpoint_dir,
        facts=facts_file(),
    output:
        answers=L.facts("{model}", "{step}", "answers"),
        specialization=L.facts("{model}", "{step}", "specialization"),
    log:
        L.log("measure_facts", "{model}", "step{step}"),
    benchmark:
        L.benchmark("measure_facts", "{model}", "step{step}")
    conda:
        ENV
    threads: JOB_THREADS
    resources:
        gpu=model_gpus,
        cpus_per_gpu=CLUSTER["cpus_per_gpu"],
        mem_mb=job_memory(model_gpus),
        runtime=job_runtime("measure_facts"),
    params:
        code=code("measure_facts.py"),
        producers=producers,
        local_checkpoint=local_fingerprint,
        facts=FACTS.to_dict() if FACTS else None,
    script:
        "../scripts/measure_facts.py"


rule facts_exposure:
    # Every trajectory of the model pretrained here, in one job: the packing is shared, the orders are cheap.
    input:
        corpus=L.world("pretrain"),
        statements=L.world("statements"),
        facts=L.world("facts"),
        # one world, one tokenizer for every model
        tokenizer=L.tokenizer(PLAN.pretrain_data.vocab_size) if PRETRAINED else [],
    output:
        L.table("facts_exposure.parquet"),
    log:
        L.log("facts_exposure"),
    conda:
        ENV
    params:
        code=code("facts_exposure.py"),
        producers=producers,
        pretrain=PLAN.pretrain_data.to_dict() if PRETRAINED else {},
        trajectories=exposure_trajectories(),
    script:
        "../scripts/facts_exposure.py"


rule facts_tables:
    input:
        answers=[L.facts(m, s, "answers") for m, s in model_steps()],
        specialization=[L.facts(m, s, "specialization") for m, s in model_steps()],
        facts=facts_file(),
    output:
        qa=L.table("qa.parquet"),
        smi=report(L.table("smi.parquet"), caption="../report/smi_table.rst", category="Knowledge frequency"),
        smi_bins=L.table("smi_bins.parquet"),
        specialization=report(
            L.table("specialization.parquet"),
            caption="../report/specialization_table.rst",
            category="Knowledge frequency",
        ),
        concepts=L.table("specialization_concepts.parquet"),
    log:
        L.log("facts_tables"),
    conda:
        ENV
    params:
        code=code("facts_tables.py"),
        producers=producers,
    script:
        "../scripts/facts_tables.py"


rule pretraining_acquisition_table:
    input:
        qa=L.table("qa.parquet"),
        exposure=L.table("facts_exposure.parquet"),
    output:
        table=L.table("pretraining_acquisition.parquet"),
        fits=L.table("pretraining_acquisition_fits.parquet"),
    log:
        L.log("pretraining_acquisition_table"),
    conda:
        ENV
    params:
        code=code("pretraining_acquisition.py"),
        producers=producers,
    script:
        "../scripts/pretraining_acquisition.py"


rule facts:
    input:
        L.table("qa.parquet"),
        L.table("smi.parquet"),
        L.table("specialization.parquet"),
        branch(EXPOSURE, then=L.table("pretraining_acquisition_fits.parquet"), otherwise=[]),
        group_figures("facts_figures"),

# The lab (docs/lab.md, kentropy.lab): per-document sums of every trajectory for the bootstrap over documents.


def trajectory_checkpoints(wildcards):
    """Every configured checkpoint of the trajectory ``wildcards.model``, in step order."""
    spec = MODELS[wildcards.model]
    return [L.checkpoint(wildcards.model, spec, s) for s in sorted(spec["steps"])]


rule lab_document_sums:
    input:
        checkpoints=trajectory_checkpoints,
        corpus=L.entropy_corpus(config["entropy"]["corpus"]["name"]),
    output:
        L.document_sums("{model}"),
    log:
        L.log("lab_document_sums", "{model}"),
    benchmark:
        L.benchmark("lab_document_sums", "{model}")
    conda:
        ENV
    threads: JOB_THREADS
    resources:
        gpu=model_gpus,
        cpus_per_gpu=CLUSTER["cpus_per_gpu"],
        mem_mb=job_memory(model_gpus),
        runtime=job_runtime("measure_entropy"),
    params:
        code=code("lab_document_sums.py"),
        producers=producers,
        steps=lambda wildcards: sorted(MODELS[wildcards.model]["steps"]),
        entropy=PLAN.entropy.to_dict(),
    script:
        "../scripts/lab_document_sums.py"

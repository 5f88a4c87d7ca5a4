# Generated tiny world and entropy corpora.


rule generate_world:
    output:
        **{role: L.world(role) for role in WORLD_FILES},
    log:
        L.log("generate_world"),
    conda:
        ENV
    params:
        code=code("generate_world.py"),
        world=canonical(spec_for(write_world, config.get("world"))),
    script:
        "../scripts/generate_world.py"


rule generate_entropy_documents:
    output:
        L.entropy_documents(),
    log:
        L.log("generate_entropy_documents"),
    conda:
        ENV
    params:
        code=code("generate_entropy_documents.py"),
        world=canonical(spec_for(write_entropy_documents, config.get("world"))),
    script:
        "../scripts/generate_entropy_documents.py"


rule skewed_pretraining_corpus:
    output:
        L.skewed_pretraining_corpus("{person}", "{object}"),
    log:
        L.log("skewed_pretraining_corpus", "person{person}-object{object}"),
    wildcard_constraints:
        person=r"\d+(\.\d+)?",
        object=r"\d+(\.\d+)?",
    conda:
        ENV
    params:
        code=code("skewed_pretraining_corpus.py"),
        # The skew comes from the wildcards, not the world's own.
        world=canonical(
            spec_for(skewed_pretraining_corpus, config.get("world"), exclude=("person_zipf", "object_zipf"))
        ),
    script:
        "../scripts/skewed_pretraining_corpus.py"


# Downloads (hf, dolma sources) must run where the network is: a localrule.
localrules:
    entropy_corpus,


rule entropy_corpus:
    input:
        generated=branch(config["entropy"]["corpus"]["source"] == "generated", then=L.entropy_documents()),
    output:
        L.entropy_corpus("{corpus}"),
    log:
        L.log("entropy_corpus", "{corpus}"),
    conda:
        ENV
    params:
        code=code("entropy_corpus.py"),
        producers=producers,
        spec=canonical(config["entropy"]["corpus"]),
    script:
        "../scripts/entropy_corpus.py"

# Generated tiny world and entropy corpora.


rule generate_world:
    output:
        pretrain="resources/world/pretrain.parquet",
        entropy="resources/world/entropy.parquet",
        new_domain="resources/world/new_domain.parquet",
        paraphrase="resources/world/fictional_paraphrase.json",
        once="resources/world/fictional_once.json",
        questions="resources/world/questions.jsonl",
    log:
        "logs/generate_world/generate_world.log",
    conda:
        ENV
    params:
        world=canonical(config.get("world")),
    script:
        "../scripts/generate_world.py"


# Downloads (hf, dolma sources) must run where the network is: a localrule.
localrules:
    entropy_corpus,


rule entropy_corpus:
    input:
        generated=branch(config["entropy"]["corpus"]["source"] == "generated", then="resources/world/entropy.parquet"),
    output:
        "resources/corpora/{corpus}.parquet",
    log:
        "logs/entropy_corpus/{corpus}.log",
    conda:
        ENV
    params:
        spec=canonical(config["entropy"]["corpus"]),
    script:
        "../scripts/entropy_corpus.py"

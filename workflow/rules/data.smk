# Generated tiny world and entropy corpora.


rule generate_world:
    output:
        pretrain="resources/world/pretrain.parquet",
        entropy="resources/world/entropy.parquet",
        new_domain="resources/world/new_domain.parquet",
        paraphrase="resources/world/fictional_paraphrase.json",
        once="resources/world/fictional_once.json",
        questions="resources/world/questions.jsonl",
    params:
        world=config.get("world"),
    log:
        "logs/generate_world/generate_world.log",
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
    params:
        spec=config["entropy"]["corpus"],
        hf_cache=config.get("hf_cache"),
    log:
        "logs/entropy_corpus/{corpus}.log",
    script:
        "../scripts/entropy_corpus.py"

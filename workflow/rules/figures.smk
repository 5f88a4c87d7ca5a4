# Figures from the aggregated tables only, so `snakemake -f figure3` takes seconds.
FORMATS = config["figures"]["formats"]


rule figure3:
    input:
        "results/tables/entropy.parquet",
    output:
        report(
            expand("results/figures/figure3.{fmt}", fmt=FORMATS),
            caption="../report/figure3.rst",
            category="Entropy",
        ),
    log:
        "logs/figures/figure3.log",
    script:
        "../scripts/figure3.py"


rule figure8:
    input:
        "results/tables/entropy.parquet",
    output:
        report(
            expand("results/figures/figure8.{fmt}", fmt=FORMATS),
            caption="../report/figure8.rst",
            category="Entropy",
        ),
    log:
        "logs/figures/figure8.log",
    script:
        "../scripts/figure8.py"


rule figures:
    input:
        rules.figure3.output,
        rules.figure8.output,

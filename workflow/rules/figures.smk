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
    conda:
        ENV
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
    conda:
        ENV
    script:
        "../scripts/figure8.py"


rule figures:
    input:
        rules.figure3.output,
        rules.figure8.output,


rule figure4:
    input:
        "results/tables/continual.parquet",
    output:
        report(
            expand("results/figures/figure4.{fmt}", fmt=FORMATS),
            caption="../report/figure4.rst",
            category="Continual learning",
        ),
    log:
        "logs/figures/figure4.log",
    conda:
        ENV
    params:
        baseline=CONTINUAL["baseline"],
        score=PROBE_SCORE,
    script:
        "../scripts/figure4.py"


rule figure11:
    input:
        "results/tables/continual.parquet",
    output:
        report(
            expand("results/figures/figure11.{fmt}", fmt=FORMATS),
            caption="../report/figure11.rst",
            category="Continual learning",
        ),
    log:
        "logs/figures/figure11.log",
    conda:
        ENV
    params:
        baseline=CONTINUAL["baseline"],
        score=PROBE_SCORE,
    script:
        "../scripts/figure11.py"


rule figure12:
    input:
        "results/tables/continual.parquet",
    output:
        report(
            expand("results/figures/figure12.{fmt}", fmt=FORMATS),
            caption="../report/figure12.rst",
            category="Continual learning",
        ),
    log:
        "logs/figures/figure12.log",
    conda:
        ENV
    params:
        runs=canonical(RUNS),
        baseline=CONTINUAL["baseline"],
        score=PROBE_SCORE,
    script:
        "../scripts/figure12.py"


rule table2:
    input:
        "results/tables/continual.parquet",
    output:
        markdown=report("results/tables/table2.md", caption="../report/table2.rst", category="Continual learning"),
        csv="results/tables/table2.csv",
    log:
        "logs/figures/table2.log",
    conda:
        ENV
    params:
        score=PROBE_SCORE,
        paper=canonical(config.get("paper_comparison")),
    script:
        "../scripts/table2.py"


rule figure_retention:
    input:
        retention_files()[0],
    output:
        report(
            expand("results/figures/retention.{fmt}", fmt=FORMATS),
            caption="../report/retention.rst",
            category="Continual learning",
        ),
    log:
        "logs/figures/retention.log",
    conda:
        ENV
    params:
        checkpoints=retention_files()[1],
        score=PROBE_SCORE,
    script:
        "../scripts/figure_retention.py"


rule paper_comparison:
    input:
        continual="results/tables/continual.parquet",
        correlations="results/tables/correlations.parquet",
    output:
        parquet="results/tables/paper_comparison.parquet",
        markdown=report(
            "results/tables/paper_comparison.md", caption="../report/paper_comparison.rst", category="Tables"
        ),
    log:
        "logs/figures/paper_comparison.log",
    conda:
        ENV
    params:
        score=PROBE_SCORE,
        paper=canonical(config.get("paper_comparison")),
    script:
        "../scripts/paper_comparison.py"


rule continual_figures:
    input:
        rules.figure4.output,
        rules.figure11.output,
        rules.figure12.output,
        rules.table2.output,
        rules.figure_retention.output,

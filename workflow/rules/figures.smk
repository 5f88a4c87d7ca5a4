# Figures and tables from the aggregated tables only, so `snakemake -f figure3` takes seconds.
# One rule draws every figure of kentropy.report.figure_registry; each figure's name is also a target rule.


rule figure:
    input:
        lambda wildcards: [L.table(t) for t in FIGURES[wildcards.name].tables],
    output:
        report(
            expand(L.figure("{{name}}", "{fmt}"), fmt=FORMATS),
            caption="../report/figure.rst",
            category=lambda wildcards: FIGURES[wildcards.name].category,
        ),
    log:
        L.log("figure", "{name}"),
    wildcard_constraints:
        name="|".join(drawn(config)),
    conda:
        ENV
    params:
        code=code("figure.py"),
        producers=producers,
        options=lambda wildcards: canonical(FIGURES[wildcards.name].options(config)),
        score=lambda wildcards: PROBE_SCORE if FIGURES[wildcards.name].scored else None,
        captions=metric_captions,  # read by the report's caption only
    script:
        "../scripts/figure.py"


for _name in drawn(config):

    rule:
        name:
            _name
        input:
            figure_files(_name),


rule figures:
    input:
        group_figures("figures"),


rule table2:
    input:
        continual=L.table("continual.parquet"),
        fits=L.table("forgetting.parquet"),
    output:
        markdown=report(L.table("table2.md"), caption="../report/table2.rst", category="Continual learning"),
        csv=L.table("table2.csv"),
    log:
        L.log("table2"),
    conda:
        ENV
    params:
        code=code("table2.py"),
        producers=producers,
        score=PROBE_SCORE,
        paper=canonical(config.get("paper_comparison")),
    script:
        "../scripts/table2.py"


rule paper_comparison:
    input:
        continual=L.table("continual.parquet"),
        correlations=L.table("correlations.parquet"),
    output:
        parquet=L.table("paper_comparison.parquet"),
        markdown=report(L.table("paper_comparison.md"), caption="../report/paper_comparison.rst", category="Tables"),
    log:
        L.log("paper_comparison"),
    conda:
        ENV
    params:
        code=code("paper_comparison.py"),
        producers=producers,
        score=PROBE_SCORE,
        paper=canonical(config.get("paper_comparison")),
    script:
        "../scripts/paper_comparison.py"


rule continual_figures:
    input:
        group_figures("continual_figures"),
        rules.table2.output,

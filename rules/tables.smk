localrules:
    table1,


rule table1:
    input:
        clinical=config["data"]["clinical"],
        split="results/split/split.tsv",
    output:
        html=report(
            "results/tables/table1.html",
            caption="../report/table1.rst",
            category="Tables",
            labels={
                "table": "Table 1",
                "shows": "Baseline characteristics of the patients",
            },
        ),
        csv="results/tables/table1.csv",
        md="results/tables/table1.md",
        tex="results/tables/table1.tex",
    log:
        "logs/table1.log",
    conda:
        "../envs/stats.yaml"
    params:
        synthetic=SYNTHETIC,
    script:
        "../scripts/table1.py"

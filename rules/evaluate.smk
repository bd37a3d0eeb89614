localrules:
    evaluate,
    numbers,


rule evaluate:
    input:
        predictions=expand(
            "results/predictions/{model}.tsv", model=config["train"]["models"]
        ),
        readers=readers_input(),
        scans="results/split/scans.tsv",
    output:
        metrics="results/evaluation/metrics.tsv",
        test_scans="results/evaluation/test_scans.tsv",
        agreement="results/evaluation/agreement.tsv",
        fleiss="results/evaluation/fleiss_kappa.tsv",
        table2=report(
            "results/tables/table2.html",
            caption="../report/table2.rst",
            category="Tables",
            labels={
                "table": "Table 2",
                "shows": "CTNet and the clinicians on the test set",
            },
        ),
        table2_csv="results/tables/table2.csv",
        table2_md="results/tables/table2.md",
        table2_tex="results/tables/table2.tex",
        table3=report(
            "results/tables/table3.html",
            caption="../report/table3.rst",
            category="Tables",
            labels={
                "table": "Table 3",
                "shows": "CTNet and the re-implemented models on the test set",
            },
        ),
        table3_csv="results/tables/table3.csv",
        table3_md="results/tables/table3.md",
        table3_tex="results/tables/table3.tex",
        agreement_table=report(
            "results/tables/agreement.html",
            caption="../report/agreement.rst",
            category="Tables",
            labels={
                "table": "Table S1",
                "shows": "Agreement of the HT calls (percent, Cohen's kappa)",
            },
        ),
        agreement_csv="results/tables/agreement.csv",
        agreement_md="results/tables/agreement.md",
        agreement_tex="results/tables/agreement.tex",
        tests=report(
            "results/tables/tests.html",
            caption="../report/tests.rst",
            category="Tables",
            labels={
                "table": "Table S2",
                "shows": "DeLong and McNemar tests of CTNet against every rater",
            },
        ),
        tests_csv="results/tables/tests.csv",
        tests_md="results/tables/tests.md",
        tests_tex="results/tables/tests.tex",
    log:
        "logs/evaluate.log",
    benchmark:
        "logs/benchmarks/evaluate.tsv"
    conda:
        "../envs/stats.yaml"
    params:
        models=config["train"]["models"],
        evaluate=config["evaluate"],
        synthetic=SYNTHETIC,
    script:
        "../scripts/evaluate.py"


rule numbers:
    input:
        clinical=config["data"]["clinical"],
        scans="results/split/scans.tsv",
        metrics="results/evaluation/metrics.tsv",
        agreement="results/evaluation/agreement.tsv",
        fleiss="results/evaluation/fleiss_kappa.tsv",
    output:
        json="results/numbers.json",
        md="results/numbers.md",
        html=report(
            "results/numbers.html",
            caption="../report/numbers.rst",
            category="Reproduction",
            labels={
                "item": "Numbers of the text",
                "shows": "Every number the paper's text quotes",
            },
        ),
    log:
        "logs/numbers.log",
    conda:
        "../envs/stats.yaml"
    params:
        models=config["train"]["models"],
        synthetic=SYNTHETIC,
    script:
        "../scripts/numbers.py"

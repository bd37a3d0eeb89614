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
            "results/tables/table2.csv",
            caption="../report/table2.rst",
            category="Tables",
        ),
        table2_md="results/tables/table2.md",
        table2_tex="results/tables/table2.tex",
        table3=report(
            "results/tables/table3.csv",
            caption="../report/table3.rst",
            category="Tables",
        ),
        table3_md="results/tables/table3.md",
        table3_tex="results/tables/table3.tex",
        agreement_table=report(
            "results/tables/agreement.csv",
            caption="../report/agreement.rst",
            category="Tables",
        ),
        agreement_md="results/tables/agreement.md",
        agreement_tex="results/tables/agreement.tex",
        tests=report(
            "results/tables/tests.csv",
            caption="../report/tests.rst",
            category="Tables",
        ),
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
        md=report(
            "results/numbers.md",
            caption="../report/numbers.rst",
            category="Numbers of the text",
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

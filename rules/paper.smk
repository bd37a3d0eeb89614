localrules:
    paper_comparison,
    paper_audit,
    paper_tables,


rule paper_comparison:
    input:
        values=config["paper"]["values"],
        metrics="results/evaluation/metrics.tsv",
        test_scans="results/evaluation/test_scans.tsv",
        numbers="results/numbers.json",
        clinical=config["data"]["clinical"],
        split="results/split/split.tsv",
        truth=truth_scans(),
        localisation="results/attribution/localisation.tsv",
        attribution_scans="results/attribution/full_head/scans.tsv",
        holds=run_holds(config["repeats"]),
    output:
        comparison=report(
            "results/paper/comparison.html",
            caption="../report/paper_comparison.rst",
            category="Reproduction",
            labels={
                "item": "The paper beside this run",
                "shows": "Every published number next to the reproduced one",
            },
        ),
        comparison_csv="results/paper/comparison.csv",
        comparison_md="results/paper/comparison.md",
        comparison_tex="results/paper/comparison.tex",
        comparison_tsv="results/paper/comparison.tsv",
        claims=report(
            "results/paper/claims.html",
            caption="../report/paper_claims.rst",
            category="Reproduction",
            labels={
                "item": "The paper's claims",
                "shows": "Each claim decided by a computed test on this run",
            },
        ),
        claims_csv="results/paper/claims.csv",
        claims_md="results/paper/claims.md",
        claims_tex="results/paper/claims.tex",
        claims_tsv="results/paper/claims.tsv",
        mrmc="results/paper/mrmc.tsv",
    log:
        "logs/paper_comparison.log",
    conda:
        "../envs/stats.yaml"
    params:
        models=config["train"]["models"],
        evaluate=config["evaluate"],
        paper=config["paper"],
        synthetic=SYNTHETIC,
    script:
        "../scripts/paper_comparison.py"


rule paper_audit:
    input:
        values=config["paper"]["values"],
    output:
        md="results/paper/audit.md",
        html=report(
            "results/paper/audit.html",
            caption="../report/paper_audit.rst",
            category="Reproduction",
            labels={
                "item": "Audit of the paper's numbers",
                "shows": "Consistency of the paper's own printed numbers",
            },
        ),
        tsv="results/paper/audit.tsv",
    log:
        "logs/paper_audit.log",
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/paper_audit.py"


rule paper_tables:
    input:
        values=config["paper"]["values"],
        comparison="results/paper/comparison.tsv",
    output:
        table1=report(
            "results/paper/table1_layout.html",
            caption="../report/paper_tables.rst",
            category="Reproduction",
            labels={
                "item": "Table 1 in the paper's layout",
                "shows": "The paper's Table 1, each cell beside this run's",
            },
        ),
        table2=report(
            "results/paper/table2_layout.html",
            caption="../report/paper_tables.rst",
            category="Reproduction",
            labels={
                "item": "Table 2 in the paper's layout",
                "shows": "The paper's Table 2, each cell beside this run's",
            },
        ),
        table3=report(
            "results/paper/table3_layout.html",
            caption="../report/paper_tables.rst",
            category="Reproduction",
            labels={
                "item": "Table 3 in the paper's layout",
                "shows": "The paper's Table 3, each cell beside this run's",
            },
        ),
        table1_tsv="results/paper/table1_layout.tsv",
        table2_tsv="results/paper/table2_layout.tsv",
        table3_tsv="results/paper/table3_layout.tsv",
    log:
        "logs/paper_tables.log",
    conda:
        "../envs/stats.yaml"
    params:
        synthetic=SYNTHETIC,
    script:
        "../scripts/paper_tables.py"

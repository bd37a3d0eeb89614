localrules:
    paper_comparison,
    paper_audit,


rule paper_comparison:
    input:
        values=config["paper"]["values"],
        metrics="results/evaluation/metrics.tsv",
        test_scans="results/evaluation/test_scans.tsv",
        numbers="results/numbers.json",
        clinical=config["data"]["clinical"],
        split="results/split/split.tsv",
        truth=truth_scans(),
        localisation=attribution_localisation,
    output:
        comparison=report(
            "results/paper/comparison.csv",
            caption="../report/paper_comparison.rst",
            category="Reproduction",
        ),
        comparison_md="results/paper/comparison.md",
        comparison_tex="results/paper/comparison.tex",
        comparison_tsv="results/paper/comparison.tsv",
        claims=report(
            "results/paper/claims.csv",
            caption="../report/paper_claims.rst",
            category="Reproduction",
        ),
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
        md=report(
            "results/paper/audit.md",
            caption="../report/paper_audit.rst",
            category="Reproduction",
        ),
        tsv="results/paper/audit.tsv",
    log:
        "logs/paper_audit.log",
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/paper_audit.py"

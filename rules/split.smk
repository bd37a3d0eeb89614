localrules:
    split,


rule split:
    input:
        clinical=config["data"]["clinical"],
        scans="results/qc/scans.tsv",
        qc="results/qc/series.tsv",
        fixed=split_file(),
    output:
        split="results/split/split.tsv",
        scans="results/split/scans.tsv",
        patients="results/qc/patients.tsv",
    log:
        "logs/split.log",
    conda:
        "../envs/stats.yaml"
    params:
        split=config["split"],
    script:
        "../scripts/split.py"

localrules:
    split,
    patient_qc,


rule split:
    input:
        clinical=config["data"]["clinical"],
        scans="results/qc/scans.tsv",
        fixed=split_file(),
        # Only an order: the table that explains the cohort is written before a split that may fail.
        patients="results/qc/patients.tsv",
    output:
        split="results/split/split.tsv",
        scans="results/split/scans.tsv",
    log:
        "logs/split.log",
    conda:
        "../envs/stats.yaml"
    params:
        split=config["split"],
    script:
        "../scripts/split.py"


# Not part of rule split (which waits for it): the table is written even when the split fails.
rule patient_qc:
    input:
        clinical=config["data"]["clinical"],
        scans="results/qc/scans.tsv",
        qc="results/qc/series.tsv",
        fixed=split_file(),
    output:
        patients="results/qc/patients.tsv",
    log:
        "logs/patient_qc.log",
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/patient_qc.py"

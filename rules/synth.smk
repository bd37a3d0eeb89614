rule synth_cohort:
    output:
        dicom=directory("resources/synthetic/dicom"),
        clinical="resources/synthetic/clinical.csv",
        readers="resources/synthetic/readers.csv",
        truth=directory("resources/synthetic/truth"),
        readme="resources/synthetic/README.txt",
    log:
        "logs/synth_cohort.log",
    benchmark:
        "logs/benchmarks/synth_cohort.tsv"
    conda:
        "../envs/dicom.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        synthetic=config["synthetic"],
    script:
        "../scripts/synth_cohort.py"

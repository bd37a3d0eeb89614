rule convert_dicom:
    input:
        dicom=config["data"]["dicom_dir"],
        clinical=config["data"]["clinical"],
    output:
        nifti=directory("results/nifti"),
        qc="results/qc/series.tsv",
        scans="results/qc/scans.tsv",
    log:
        "logs/convert_dicom.log",
    benchmark:
        "logs/benchmarks/convert_dicom.tsv"
    conda:
        "../envs/dicom.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        convert=config["convert"],
    script:
        "../scripts/convert_dicom.py"

rule preprocess:
    input:
        scans="results/qc/scans.tsv",
        nifti="results/nifti",
    output:
        volumes="results/arrays/volumes.npy",
        brain_mask="results/arrays/brain_mask.npy",
        index="results/arrays/index.tsv",
        parameters="results/arrays/preprocess.json",
    log:
        "logs/preprocess.log",
    benchmark:
        "logs/benchmarks/preprocess.tsv"
    conda:
        "../envs/dicom.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        preprocess=config["preprocess"],
    script:
        "../scripts/preprocess.py"


rule lesion_masks:
    input:
        index="results/arrays/index.tsv",
        scans="results/qc/scans.tsv",
        masks=lesion_masks_input(),
    output:
        lesion_mask="results/arrays/lesion_mask.npy",
    log:
        "logs/lesion_masks.log",
    benchmark:
        "logs/benchmarks/lesion_masks.tsv"
    conda:
        "../envs/dicom.yaml"
    params:
        preprocess=config["preprocess"],
        masks_dir=config["data"]["lesion_masks"],
    script:
        "../scripts/lesion_masks.py"

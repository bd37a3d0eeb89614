# Preprocessing in shards of patients (config shards.preprocess): each preprocess_shard job makes the
# arrays of its patients' scans, preprocess gathers them into results/arrays/ in scans.tsv's order.

PREPROCESS_SHARDS = config["shards"]["preprocess"]


rule preprocess_shard:
    input:
        scans="results/qc/scans.tsv",
        nifti="results/nifti",
    output:
        volumes=temp("results/shards/preprocess/{shard}/volumes.npy"),
        brain_mask=temp("results/shards/preprocess/{shard}/brain_mask.npy"),
        index=temp("results/shards/preprocess/{shard}/index.tsv"),
        parameters=temp("results/shards/preprocess/{shard}/preprocess.json"),
    log:
        "logs/preprocess/shard{shard}.log",
    benchmark:
        "logs/benchmarks/preprocess_shard{shard}.tsv"
    conda:
        "../envs/dicom.yaml"
    threads: 2
    resources:
        # Fixed: a preprocessing job streams one scan at a time into memory-mapped arrays, so its peak
        # RSS does not grow with its shard (127-130 MB for 5 to 60 patients on one thread, measured
        # with benchmarks/bench_memory.py --shard-scaling: docs/models.md); 261 MB a process at 512.
        mem_mb=4000,
        runtime=shard_runtime(
            cohort_patients(), PREPROCESS_SHARDS, PREPROCESS_MINUTES_PER_PATIENT
        ),
    params:
        preprocess=config["preprocess"],
        shard=lambda wildcards: int(wildcards.shard),
        n_shards=PREPROCESS_SHARDS,
    script:
        "../scripts/preprocess.py"


rule preprocess:
    input:
        scans="results/qc/scans.tsv",
        shards=expand(
            "results/shards/preprocess/{shard}/{name}",
            shard=range(PREPROCESS_SHARDS),
            name=["volumes.npy", "brain_mask.npy", "index.tsv", "preprocess.json"],
        ),
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
    resources:
        mem_mb=2000,
        runtime=shard_runtime(cohort_patients(), 1, GATHER_MINUTES_PER_PATIENT),
    params:
        shards=expand(
            "results/shards/preprocess/{shard}", shard=range(PREPROCESS_SHARDS)
        ),
    script:
        "../scripts/gather_arrays.py"


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

# Conversion in shards of patients (htct.shards; config shards.convert): with more than one shard,
# index_dicom reads every header once and writes which files each shard holds; each
# convert_dicom_shard job then reads and converts only its patients' files, and convert_dicom gathers
# them into the outputs of one job. One shard reads the whole tree itself (no index job).


localrules:
    convert_dicom,


wildcard_constraints:
    shard=r"\d+",


# Minutes per patient from benchmarks/bench_memory.py (docs/models.md, "Memory and time at scale"),
# doubled by htct.shards.shard_runtime for a slower or busier node (cohort_patients: rules/common.smk).
# conversion at a 512 matrix: 0.35 s per scan measured; compressed DICOM is slower
CONVERT_MINUTES_PER_PATIENT = 0.05
HEADER_MINUTES_PER_PATIENT = 0.005  # index_dicom reads every header of the tree, once
# preprocessing at 512 px on one core: 4.8 s per scan, 1.3 scans per patient
PREPROCESS_MINUTES_PER_PATIENT = 0.1
GATHER_MINUTES_PER_PATIENT = 0.01
# Memory (benchmarks/bench_memory.py --shard-scaling, docs/models.md): a conversion job holds the
# header of every file it reads, 6.3 kB each (measured 0.27-0.32 MB per synthetic patient of 50 files);
# real exports hold more files (thin slices, several reconstructions): assume up to 1,000 a patient.
# The base covers the process and its two workers' volumes (161 MB each at 512 measured).
CONVERT_BASE_MB = 1000
CONVERT_MB_PER_PATIENT = 6.4  # 1,000 files x 6.3 kB, rounded up
# index_dicom keeps about 160 bytes a file (htct.dicom.sharding.FileUnit): 0.16 MB per patient at 1,000.
INDEX_MB_PER_PATIENT = 0.2


CONVERT_SHARDS = config["shards"]["convert"]


rule index_dicom:
    input:
        dicom=config["data"]["dicom_dir"],
        clinical=config["data"]["clinical"],
    output:
        index="results/shards/convert/index.json",
    log:
        "logs/convert_dicom/index.log",
    benchmark:
        "logs/benchmarks/index_dicom.tsv"
    conda:
        "../envs/dicom.yaml"
    threads: 2
    resources:
        mem_mb=shard_mem_mb(cohort_patients(), 1, CONVERT_BASE_MB, INDEX_MB_PER_PATIENT),
        runtime=shard_runtime(cohort_patients(), 1, HEADER_MINUTES_PER_PATIENT),
    params:
        n_shards=CONVERT_SHARDS,
    script:
        "../scripts/index_dicom.py"


rule convert_dicom_shard:
    input:
        dicom=config["data"]["dicom_dir"],
        clinical=config["data"]["clinical"],
        index="results/shards/convert/index.json" if CONVERT_SHARDS > 1 else [],
    output:
        nifti=directory("results/shards/convert/{shard}/nifti"),
        qc="results/shards/convert/{shard}/series.tsv",
        scans="results/shards/convert/{shard}/scans.tsv",
    log:
        "logs/convert_dicom/shard{shard}.log",
    benchmark:
        "logs/benchmarks/convert_dicom_shard{shard}.tsv"
    conda:
        "../envs/dicom.yaml"
    threads: 2
    resources:
        mem_mb=shard_mem_mb(
            cohort_patients(), CONVERT_SHARDS, CONVERT_BASE_MB, CONVERT_MB_PER_PATIENT
        ),
        runtime=shard_runtime(
            cohort_patients(),
            CONVERT_SHARDS,
            CONVERT_MINUTES_PER_PATIENT
            + HEADER_MINUTES_PER_PATIENT,  # its own headers
        ),
    params:
        convert=config["convert"],
        shard=lambda wildcards: int(wildcards.shard),
        n_shards=CONVERT_SHARDS,
    script:
        "../scripts/convert_dicom.py"


rule convert_dicom:
    input:
        nifti=expand(
            "results/shards/convert/{shard}/nifti", shard=range(CONVERT_SHARDS)
        ),
        qc=expand(
            "results/shards/convert/{shard}/series.tsv", shard=range(CONVERT_SHARDS)
        ),
        scans=expand(
            "results/shards/convert/{shard}/scans.tsv", shard=range(CONVERT_SHARDS)
        ),
    output:
        nifti=directory("results/nifti"),
        qc="results/qc/series.tsv",
        scans="results/qc/scans.tsv",
    log:
        "logs/convert_dicom.log",
    conda:
        "../envs/dicom.yaml"
    script:
        "../scripts/gather_conversion.py"

# Counterfactual test (synthetic cohort only): every test scan re-rendered without one image factor
# (infarct, hyperdense artery, leukoaraiosis; same head, pose and noise), converted and cut with the
# original scan's crop, and every model's logit change set beside the image-only oracle's.
# The re-rendered DICOM and its clinical sheet are temporary: only the arrays and tables stay.


rule counterfactual_dicom:
    input:
        truth="resources/synthetic/truth",
        split="results/split/split.tsv",
    output:
        dicom=temp(directory("results/counterfactuals/{factor}/dicom")),
        # links DICOM PatientIDs (PHI) to pseudonyms, as resources/synthetic/clinical.csv: removed
        # with the DICOM once converted, so that no identifier is left under results/
        clinical=temp("results/counterfactuals/{factor}/clinical.csv"),
        oracle="results/counterfactuals/{factor}/oracle.tsv",
    log:
        "logs/counterfactuals/{factor}_dicom.log",
    benchmark:
        "logs/benchmarks/counterfactual_dicom_{factor}.tsv"
    conda:
        "../envs/dicom.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        synthetic=config["synthetic"],
    script:
        "../scripts/counterfactual_dicom.py"


rule counterfactual_convert:
    input:
        dicom="results/counterfactuals/{factor}/dicom",
        clinical="results/counterfactuals/{factor}/clinical.csv",
    output:
        nifti=temp(directory("results/counterfactuals/{factor}/nifti")),
        qc="results/counterfactuals/{factor}/qc/series.tsv",
        scans="results/counterfactuals/{factor}/qc/scans.tsv",
    log:
        "logs/counterfactuals/{factor}_convert.log",
    benchmark:
        "logs/benchmarks/counterfactual_convert_{factor}.tsv"
    conda:
        "../envs/dicom.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        convert=config["convert"],
    script:
        "../scripts/convert_dicom.py"


rule counterfactual_arrays:
    input:
        scans="results/counterfactuals/{factor}/qc/scans.tsv",
        nifti="results/counterfactuals/{factor}/nifti",
        reference_volumes=counterfactual_reference("volumes.npy"),
        reference_mask=counterfactual_reference("brain_mask.npy"),
        reference_index=counterfactual_reference("index.tsv"),
        reference_parameters=counterfactual_reference("preprocess.json"),
    output:
        volumes="results/counterfactuals/{factor}/{input}/volumes.npy",
        brain_mask="results/counterfactuals/{factor}/{input}/brain_mask.npy",
        index="results/counterfactuals/{factor}/{input}/index.tsv",
        parameters="results/counterfactuals/{factor}/{input}/preprocess.json",
    log:
        "logs/counterfactuals/{factor}_{input}_arrays.log",
    benchmark:
        "logs/benchmarks/counterfactual_arrays_{factor}_{input}.tsv"
    conda:
        "../envs/dicom.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/counterfactual_arrays.py"


rule counterfactuals:
    input:
        oracle=expand(
            "results/counterfactuals/{factor}/oracle.tsv", factor=IMAGE_FACTORS
        ),
        arrays=counterfactual_arrays_all(),
        models=counterfactual_model_inputs(),
    output:
        deltas="results/evaluation/counterfactuals.tsv",
        summary="results/evaluation/counterfactual_summary.tsv",
        table=report(
            "results/tables/counterfactuals.html",
            caption="../report/counterfactuals.rst",
            category="Reproduction",
            labels={
                "item": "Counterfactual test",
                "shows": "What each model learnt: its logit change when a factor is removed",
            },
        ),
        table_csv="results/tables/counterfactuals.csv",
        table_md="results/tables/counterfactuals.md",
        table_tex="results/tables/counterfactuals.tex",
    log:
        "logs/counterfactuals/summary.log",
    benchmark:
        "logs/benchmarks/counterfactuals.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        variants=counterfactual_variants(),
        factors=IMAGE_FACTORS,
        bootstrap={
            "n_bootstrap": config["evaluate"]["n_bootstrap"],
            "seed": config["evaluate"]["seed"],
        },
    script:
        "../scripts/counterfactuals.py"

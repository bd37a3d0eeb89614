# Attribution (fig. 3 and the attribution table): which image evidence CTNet's HT logit rests on,
# by four methods side by side (the paper's Grad-CAM, a pooling-aware CAM, occlusion and Integrated
# Gradients towards healthy tissue), each checked by model-parameter randomisation, scored against
# the right chance levels and tested for faithfulness (deletion, counterfactual infarct removal).
# Two CTNet variants: the configured one and one trained on the other kind of input (skull-stripped
# vs full head), since the paper's stated limitation was attention on the skull. After a k-fold
# training (split.k_folds >= 2) the configured CTNet is the fold ensemble of results/models/ctnet
# (mean probability, as htct predict) and the comparison CTNet one model trained with fold 0's
# patients as validation. Methods and subsets: docs/attribution.md.


# The comparison arrays: skull stripping is the last step of preprocessing, so skull-stripped
# arrays are the full-head ones times their brain masks (htct.preprocess.skull_strip_arrays: the
# same bits in seconds); full-head arrays for a skull-stripped configuration need a second pass.
if not config["preprocess"]["skull_strip"]:

    rule preprocess_skull_strip_comparison:
        input:
            volumes="results/arrays/volumes.npy",
            brain_mask="results/arrays/brain_mask.npy",
            index="results/arrays/index.tsv",
            parameters="results/arrays/preprocess.json",
        output:
            volumes="results/skull_strip_comparison/arrays/volumes.npy",
            brain_mask="results/skull_strip_comparison/arrays/brain_mask.npy",
            index="results/skull_strip_comparison/arrays/index.tsv",
            parameters="results/skull_strip_comparison/arrays/preprocess.json",
        log:
            "logs/skull_strip_comparison/preprocess.log",
        benchmark:
            "logs/benchmarks/skull_strip_comparison_preprocess.tsv"
        conda:
            "../envs/dicom.yaml"
        resources:
            mem_mb=4000,
            runtime=30,
        script:
            "../scripts/skull_strip_arrays.py"

else:

    rule preprocess_skull_strip_comparison:
        input:
            scans="results/qc/scans.tsv",
            nifti="results/nifti",
        output:
            volumes="results/skull_strip_comparison/arrays/volumes.npy",
            brain_mask="results/skull_strip_comparison/arrays/brain_mask.npy",
            index="results/skull_strip_comparison/arrays/index.tsv",
            parameters="results/skull_strip_comparison/arrays/preprocess.json",
        log:
            "logs/skull_strip_comparison/preprocess.log",
        benchmark:
            "logs/benchmarks/skull_strip_comparison_preprocess.tsv"
        conda:
            "../envs/dicom.yaml"
        threads: 2
        resources:
            mem_mb=8000,
            runtime=120,
        params:
            preprocess=comparison_preprocess(),
        script:
            "../scripts/preprocess.py"


rule train_skull_strip_comparison:
    input:
        volumes="results/skull_strip_comparison/arrays/volumes.npy",
        index="results/skull_strip_comparison/arrays/index.tsv",
        split="results/split/split.tsv",
    output:
        weights="results/skull_strip_comparison/models/{model}/weights.pt",
        config="results/skull_strip_comparison/models/{model}/config.yaml",
        threshold="results/skull_strip_comparison/models/{model}/threshold.json",
        epochs="results/skull_strip_comparison/models/{model}/epochs.tsv",
        predictions="results/skull_strip_comparison/predictions/{model}.tsv",
        curve=multiext(
            "results/skull_strip_comparison/models/{model}/training_curve",
            ".pdf",
            ".png",
        ),
    log:
        "logs/skull_strip_comparison/train_{model}.log",
    benchmark:
        "logs/benchmarks/skull_strip_comparison_train_{model}.tsv"
    wildcard_constraints:
        model="ctnet",
    conda:
        "../envs/torch.yaml"
    threads: training_threads()
    resources:
        gpu=TRAIN_GPUS,
        mem_mb=8000,
        runtime=240,
    params:
        train=config["train"],
        preprocess=comparison_preprocess(),
        fold=comparison_fold(),
        synthetic=SYNTHETIC,
    script:
        "../scripts/train.py"


localrules:
    attribution_summary,


rule attribution:
    input:
        unpack(attribution_variant_inputs),
        lesion_mask=lesion_mask_array(),
        scans="results/split/scans.tsv",
        truth=truth_scans(),
    output:
        scans="results/attribution/{input_kind}/scans.tsv",
        randomisation="results/attribution/{input_kind}/randomisation.tsv",
        random_brain_share="results/attribution/{input_kind}/random_brain_share.tsv",
        cases="results/attribution/{input_kind}/cases.npz",
        timing="results/attribution/{input_kind}/timing.tsv",
    log:
        "logs/attribution/{input_kind}.log",
    benchmark:
        "logs/benchmarks/attribution_{input_kind}.tsv"
    wildcard_constraints:
        input_kind="full_head|skull_stripped",
    conda:
        "../envs/torch.yaml"
    # One thread: the two variants run side by side on 2 cores, and a single-threaded job does not
    # spin-wait when other jobs share the cores (measured: 2 threads under load took 3x longer).
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        settings=config["attribution"],
    script:
        "../scripts/attribution.py"


rule attribution_summary:
    input:
        variants=expand(
            "results/attribution/{input_kind}/scans.tsv", input_kind=INPUT_KINDS
        ),
        randomisation=expand(
            "results/attribution/{input_kind}/randomisation.tsv",
            input_kind=INPUT_KINDS,
        ),
        random_brain_share=expand(
            "results/attribution/{input_kind}/random_brain_share.tsv",
            input_kind=INPUT_KINDS,
        ),
        cases=expand(
            "results/attribution/{input_kind}/cases.npz", input_kind=INPUT_KINDS
        ),
        counterfactuals=counterfactuals_input,
    output:
        localisation="results/attribution/localisation.tsv",
        uses_infarct="results/attribution/uses_infarct.tsv",
        sanity="results/attribution/sanity.tsv",
        faithfulness="results/attribution/faithfulness.tsv",
        verdicts="results/attribution/verdicts.tsv",
        table=report(
            "results/tables/attribution.html",
            caption="../report/attribution_table.rst",
            category="Tables",
            labels={
                "table": "Table S3",
                "shows": "Where CTNet's evidence lies, by four methods, with their tests",
            },
        ),
        table_csv="results/tables/attribution.csv",
        table_md="results/tables/attribution.md",
        table_tex="results/tables/attribution.tex",
        fig3=multiext("results/figures/fig3_attention", ".pdf", ".png"),
    log:
        "logs/attribution/summary.log",
    conda:
        "../envs/torch.yaml"
    params:
        input_kinds=INPUT_KINDS,
        configured_input=configured_input_kind(),
        evaluate=config["evaluate"],
        synthetic=SYNTHETIC,
    script:
        "../scripts/attribution_summary.py"

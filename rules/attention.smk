# Attention analysis (fig. 3): CTNet's Grad-CAM heatmaps on the test scans and the share of their
# mass inside the brain, outside it (skull, scalp) and inside the lesion; compared with a CTNet
# trained on the other kind of input (skull-stripped vs not), since the paper's stated limitation
# was attention on the skull. After a k-fold training (split.k_folds >= 2) the configured CTNet is the
# fold ensemble (results/models/ctnet: mean probability, mean heatmap, as htct predict) and the
# comparison CTNet a single model trained with fold 0's patients as validation.


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
        curve="results/skull_strip_comparison/models/{model}/training_curve.png",
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


rule attention:
    input:
        model="results/models/ctnet/threshold.json",
        model_weights=model_weights("ctnet"),
        volumes="results/arrays/volumes.npy",
        brain_mask="results/arrays/brain_mask.npy",
        lesion_mask=lesion_mask_array(),
        index="results/arrays/index.tsv",
        predictions="results/predictions/ctnet.tsv",
        comparison_model="results/skull_strip_comparison/models/ctnet/weights.pt",
        comparison_volumes="results/skull_strip_comparison/arrays/volumes.npy",
        comparison_brain_mask="results/skull_strip_comparison/arrays/brain_mask.npy",
        comparison_index="results/skull_strip_comparison/arrays/index.tsv",
        comparison_predictions="results/skull_strip_comparison/predictions/ctnet.tsv",
        scans="results/split/scans.tsv",
        truth=truth_scans(),
    output:
        fig3=report(
            multiext("results/figures/fig3_attention", ".pdf", ".png"),
            caption="../report/fig3_attention.rst",
            category="Figures",
        ),
        mass="results/evaluation/attention_mass.tsv",
        table=report(
            "results/tables/attention.csv",
            caption="../report/attention_table.rst",
            category="Tables",
        ),
        table_md="results/tables/attention.md",
        table_tex="results/tables/attention.tex",
    log:
        "logs/attention.log",
    benchmark:
        "logs/benchmarks/attention.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        skull_strip=config["preprocess"]["skull_strip"],
        synthetic=SYNTHETIC,
    script:
        "../scripts/attention.py"

# The spread over repeats (htct.paper.repeats; docs/models.md, "Repeats"): repeat splitI_seedJ redraws
# the split with split.seed + I and trains with train.seed + J; one job per repeat and model, so local
# cores and SLURM run them in parallel. The default run makes repeats.splits x repeats.seeds of them;
# `snakemake --cores all repeats` the full set (repeats.full_splits x repeats.full_seeds), and
# `snakemake --cores all image_split` the leakage sensitivity analysis (the same repeats split by image).

from htct.repeats import (
    REPEAT_PATTERN,
    SCOPES,
    SPLIT_KINDS,
    SPREAD_FILES,
    repeat_split_seed,
    repeat_train_config,
    scope_files,
    scope_model_files,
)

REPEATS = config["repeats"]


wildcard_constraints:
    repeat=REPEAT_PATTERN,
    kind="|".join(SPLIT_KINDS),
    scope="|".join(SCOPES),


localrules:
    repeat_split,
    repeat_evaluate,
    repeats_summary,
    repeats_figure,
    leakage,


rule repeat_split:
    input:
        clinical=config["data"]["clinical"],
        scans="results/qc/scans.tsv",
    output:
        split="results/repeats/{kind}/{repeat}/split.tsv",
        scans="results/repeats/{kind}/{repeat}/scans.tsv",
    log:
        "logs/repeats/{kind}/{repeat}/split.log",
    conda:
        "../envs/stats.yaml"
    params:
        split=config["split"],
        seed=lambda wc: repeat_split_seed(wc.repeat, config),
    script:
        "../scripts/repeat_split.py"


rule repeat_train:
    input:
        volumes="results/arrays/volumes.npy",
        index="results/arrays/index.tsv",
        split="results/repeats/{kind}/{repeat}/split.tsv",
    output:
        weights="results/repeats/{kind}/{repeat}/models/{model}/weights.pt",
        config="results/repeats/{kind}/{repeat}/models/{model}/config.yaml",
        threshold="results/repeats/{kind}/{repeat}/models/{model}/threshold.json",
        epochs="results/repeats/{kind}/{repeat}/models/{model}/epochs.tsv",
        predictions="results/repeats/{kind}/{repeat}/predictions/{model}.tsv",
        curve=multiext(
            "results/repeats/{kind}/{repeat}/models/{model}/training_curve",
            ".pdf",
            ".png",
        ),
    log:
        "logs/repeats/{kind}/{repeat}/train_{model}.log",
    benchmark:
        "logs/benchmarks/repeats/{kind}_{repeat}_train_{model}.tsv"
    wildcard_constraints:
        model="|".join(REPEATS["models"]),
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        gpu=TRAIN_GPUS,
        mem_mb=8000,
        runtime=240,
    params:
        train=lambda wc: repeat_train_config(wc.repeat, config),
        preprocess=config["preprocess"],
        fold=-1,
        synthetic=SYNTHETIC,
    script:
        "../scripts/train.py"


rule repeat_evaluate:
    input:
        predictions=expand(
            "results/repeats/{{kind}}/{{repeat}}/predictions/{model}.tsv",
            model=REPEATS["models"],
        ),
        readers=readers_input(),
        scans="results/repeats/{kind}/{repeat}/scans.tsv",
        truth=truth_scans(),
    output:
        metrics="results/repeats/{kind}/{repeat}/metrics.tsv",
        test_scans="results/repeats/{kind}/{repeat}/test_scans.tsv",
        claims="results/repeats/{kind}/{repeat}/claims.tsv",
    log:
        "logs/repeats/{kind}/{repeat}/evaluate.log",
    conda:
        "../envs/stats.yaml"
    params:
        models=REPEATS["models"],
        evaluate=config["evaluate"],
        paper=config["paper"],
    script:
        "../scripts/repeat_evaluate.py"


rule repeats_summary:
    input:
        metrics=lambda wc: scope_files(REPEATS, wc.scope, "metrics.tsv"),
        claims=lambda wc: scope_files(REPEATS, wc.scope, "claims.tsv"),
        epochs=lambda wc: scope_model_files(
            REPEATS, wc.scope, "models/{model}/epochs.tsv"
        ),
        thresholds=lambda wc: scope_model_files(
            REPEATS, wc.scope, "models/{model}/threshold.json"
        ),
        predictions=lambda wc: scope_model_files(
            REPEATS, wc.scope, "predictions/{model}.tsv"
        ),
        truth=truth_scans(),
        headline="results/evaluation/metrics.tsv",
        values=config["paper"]["values"],
    output:
        spread=report(
            "results/repeats/{scope}/spread.html",
            caption="../report/repeats_spread.rst",
            category="Reproduction",
            labels={
                "item": "Spread over the repeats ({scope})",
                "shows": "Median and 2.5-97.5th percentiles over the repeats, the headline run and the paper",
            },
        ),
        spread_csv="results/repeats/{scope}/spread.csv",
        spread_md="results/repeats/{scope}/spread.md",
        spread_tex="results/repeats/{scope}/spread.tex",
        holds="results/repeats/{scope}/holds.tsv",
        metrics="results/repeats/{scope}/metrics.tsv",
        claims="results/repeats/{scope}/claims.tsv",
        convergence="results/repeats/{scope}/convergence.tsv",
    log:
        "logs/repeats/{scope}_summary.log",
    conda:
        "../envs/stats.yaml"
    params:
        models=REPEATS["models"],
        synthetic=SYNTHETIC,
    script:
        "../scripts/repeats_summary.py"


rule repeats_figure:
    input:
        metrics="results/repeats/{scope}/metrics.tsv",
        claims="results/repeats/{scope}/claims.tsv",
        spread="results/repeats/{scope}/spread.csv",
    output:
        png=report(
            "results/repeats/{scope}/spread.png",
            caption="../report/repeats_figure.rst",
            category="Reproduction",
            labels={
                "item": "Spread over the repeats, figure ({scope})",
                "shows": "One point per repeat; the headline run and the paper marked",
            },
        ),
        pdf="results/repeats/{scope}/spread.pdf",
    log:
        "logs/repeats/{scope}_figure.log",
    conda:
        "../envs/plots.yaml"
    params:
        model=REPEATS["models"][0],
        synthetic=SYNTHETIC,
    script:
        "../scripts/repeats_figure.py"


rule leakage:
    input:
        patient=lambda wc: scope_files(REPEATS, wc.scope, "metrics.tsv", "patient"),
        image=lambda wc: scope_files(REPEATS, wc.scope, "metrics.tsv", "image"),
        image_splits=lambda wc: scope_files(REPEATS, wc.scope, "split.tsv", "image"),
    output:
        table=report(
            "results/repeats/{scope}/leakage.html",
            caption="../report/leakage.rst",
            category="Reproduction",
            labels={
                "item": "Image-level split: leakage ({scope})",
                "shows": "What a split by image (the paper's probable design) adds to CTNet's metrics",
            },
        ),
        csv="results/repeats/{scope}/leakage.csv",
        md="results/repeats/{scope}/leakage.md",
        tex="results/repeats/{scope}/leakage.tex",
    log:
        "logs/repeats/{scope}_leakage.log",
    conda:
        "../envs/stats.yaml"
    params:
        model=REPEATS["models"][0],
        synthetic=SYNTHETIC,
    script:
        "../scripts/leakage.py"

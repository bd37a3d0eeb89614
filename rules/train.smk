# Training of CTNet and the two comparison models (htct.train), one job per model; with
# split.k_folds >= 2 one job per model and fold, then the folds' predictions are merged.
# checkpoint.pt is deliberately not an output: Snakemake deletes the outputs of a failed job, and the
# checkpoint must survive so that the rerun resumes from the last completed epoch.

K_FOLDS = k_folds()


# One GPU per training job unless training is pinned to the CPU; a local `snakemake --cores all`
# is not held back by it (Snakemake 9 does not limit resources that --resources leaves out).
TRAIN_GPUS = 0 if config["train"]["device"] == "cpu" else 1


if K_FOLDS < 2:

    rule train:
        input:
            volumes="results/arrays/volumes.npy",
            index="results/arrays/index.tsv",
            split="results/split/split.tsv",
        output:
            weights="results/models/{model}/weights.pt",
            config="results/models/{model}/config.yaml",
            threshold="results/models/{model}/threshold.json",
            epochs="results/models/{model}/epochs.tsv",
            predictions="results/predictions/{model}.tsv",
            curve=multiext("results/models/{model}/training_curve", ".pdf", ".png"),
        log:
            "logs/train/{model}.log",
        benchmark:
            "logs/benchmarks/train_{model}.tsv"
        wildcard_constraints:
            model="|".join(config["train"]["models"]),
        conda:
            "../envs/torch.yaml"
        threads: training_threads()
        resources:
            gpu=TRAIN_GPUS,
            mem_mb=8000,
            runtime=240,
        params:
            train=config["train"],
            preprocess=config["preprocess"],
            fold=-1,
            synthetic=SYNTHETIC,
        script:
            "../scripts/train.py"

else:

    rule train_fold:
        input:
            volumes="results/arrays/volumes.npy",
            index="results/arrays/index.tsv",
            split="results/split/split.tsv",
        output:
            weights="results/models/{model}/fold{fold}/weights.pt",
            config="results/models/{model}/fold{fold}/config.yaml",
            threshold="results/models/{model}/fold{fold}/threshold.json",
            epochs="results/models/{model}/fold{fold}/epochs.tsv",
            predictions="results/models/{model}/fold{fold}/predictions.tsv",
            curve=multiext(
                "results/models/{model}/fold{fold}/training_curve", ".pdf", ".png"
            ),
        log:
            "logs/train/{model}_fold{fold}.log",
        benchmark:
            "logs/benchmarks/train_{model}_fold{fold}.tsv"
        wildcard_constraints:
            model="|".join(config["train"]["models"]),
        conda:
            "../envs/torch.yaml"
        threads: training_threads()
        resources:
            gpu=TRAIN_GPUS,
            mem_mb=8000,
            runtime=240,
        params:
            train=config["train"],
            preprocess=config["preprocess"],
            synthetic=SYNTHETIC,
        script:
            "../scripts/train.py"

    rule merge_folds:
        input:
            expand(
                "results/models/{{model}}/fold{fold}/predictions.tsv",
                fold=range(K_FOLDS),
            ),
        output:
            predictions="results/predictions/{model}.tsv",
            threshold="results/models/{model}/threshold.json",
        log:
            "logs/train/{model}_merge.log",
        wildcard_constraints:
            model="|".join(config["train"]["models"]),
        conda:
            "../envs/torch.yaml"
        script:
            "../scripts/train.py"

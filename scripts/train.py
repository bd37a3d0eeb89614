"""Train one model (or one fold of it), or merge a model's fold predictions (rule merge_folds)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

from htct.train import TrainConfig, TrainOutputs, merge_fold_predictions, train_model

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

if snakemake.rule == "merge_folds":
    merge_fold_predictions(snakemake.input, snakemake.output.predictions, snakemake.output.threshold)
else:
    train_model(
        snakemake.wildcards.model,
        snakemake.input.volumes,
        snakemake.input.index,
        snakemake.input.split,
        fold=int(snakemake.wildcards.get("fold", snakemake.params.get("fold", -1))),
        preprocess=snakemake.params.preprocess,
        outputs=TrainOutputs.from_rule(snakemake.output),
        config=TrainConfig.from_mapping(
            snakemake.params.train, model=snakemake.wildcards.model, threads=snakemake.threads
        ),
        synthetic=snakemake.params.synthetic,
    )

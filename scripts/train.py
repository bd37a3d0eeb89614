"""Train one model (or one fold of it), or merge a model's fold predictions (rule merge_folds)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

from htct.train import merge_fold_predictions, train_model

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

if snakemake.rule == "merge_folds":
    merge_fold_predictions(snakemake.input, snakemake.output.predictions, snakemake.output.threshold)
else:
    out_dir = Path(snakemake.output.weights).parent
    train_model(
        snakemake.wildcards.model,
        snakemake.input.volumes,
        snakemake.input.index,
        snakemake.input.split,
        out_dir,
        fold=int(snakemake.wildcards.get("fold", snakemake.params.get("fold", -1))),
        predictions_tsv=snakemake.output.predictions,
        preprocess=snakemake.params.preprocess,
        # synthetic: the training curve's banner; rules that do not pass it take the config's data.synthetic.
        **{
            **snakemake.params.train,
            "threads": snakemake.threads,
            "synthetic": bool(snakemake.params.get("synthetic", snakemake.config["data"]["synthetic"])),
        },
    )

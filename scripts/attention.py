"""Figure 3 and the attention table: CTNet's Grad-CAM mass in brain, skull and lesion, with and
without skull-stripped input."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import numpy as np
import pandas as pd

from htct.figures.attention import attention_summary, fig3_attention, gradcam
from htct.figures.cases import choose_cases
from htct.tables import write_table
from htct.tables.attention import attention_table
from htct.train.predict import load_trained_model

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
ids = {"patient_id": str, "scan_id": str}
inputs, synthetic = snakemake.input, snakemake.params.synthetic
lesions = np.load(inputs.lesion_mask, mmap_mode="r") if inputs.lesion_mask else None
parts = pd.read_csv(inputs.scans, sep="\t", dtype=ids)[["scan_id", "part"]]
truth = pd.read_csv(Path(inputs.truth) / "scans.tsv", sep="\t", dtype=ids) if inputs.truth else None
stripped = snakemake.params.skull_strip
variants = {  # label -> (model, arrays prefix, predictions); the configured input first
    f"CTNet ({'skull-stripped' if stripped else 'full head'} input)": ("", inputs.predictions),
    f"CTNet ({'full head' if stripped else 'skull-stripped'} input)": (
        "comparison_",
        inputs.comparison_predictions,
    ),
}
summaries, predictions = {}, {}
for label, (prefix, prediction_tsv) in variants.items():
    # The model folder (input: its threshold.json); after a k-fold training the configured CTNet's
    # folder loads as the fold ensemble (mean probability; gradcam averages the folds' heatmaps).
    model = load_trained_model(Path(inputs[f"{prefix}model"]).parent).model
    volumes = np.load(inputs[f"{prefix}volumes"], mmap_mode="r")
    index = pd.read_csv(inputs[f"{prefix}index"], sep="\t", dtype=ids)
    test = index.merge(parts, on="scan_id").query("part == 'test'").sort_values("row")
    brain = np.load(inputs[f"{prefix}brain_mask"], mmap_mode="r")
    summaries[label] = attention_summary(model, volumes, brain, lesions, test["row"], test["scan_id"])
    predictions[label] = pd.read_csv(prediction_tsv, sep="\t", dtype=ids)
    if not prefix:  # figure 3 shows the configured model
        cases = choose_cases(test, truth)
        heatmaps = {row: gradcam(model, np.asarray(volumes[row], dtype=np.float32)) for _, row, _ in cases}
        fig3_attention(
            volumes, heatmaps, lesions, cases, Path(snakemake.output.fig3[0]).with_suffix(""), synthetic
        )
pd.concat(summaries, names=["model", "line"]).to_csv(snakemake.output.mass, sep="\t")
table = attention_table(summaries, predictions)
logging.info("attention:\n%s", table.to_string())
title = "Share of CTNet's Grad-CAM attention inside the brain, outside it and inside the lesion (test scans)"
write_table(table, Path(snakemake.output.table).with_suffix(""), title, synthetic)

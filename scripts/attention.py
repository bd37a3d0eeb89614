"""Figure 3: CTNet's Grad-CAM attention on test scans, and where its mass falls (brain, skull, lesion)."""

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
from htct.train.predict import load_trained_model

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
ids = {"patient_id": str, "scan_id": str}
model = load_trained_model(Path(snakemake.input.model).parent).model
volumes = np.load(snakemake.input.volumes, mmap_mode="r")
brain = np.load(snakemake.input.brain_mask, mmap_mode="r")
lesions = np.load(snakemake.input.lesion_mask, mmap_mode="r") if snakemake.input.lesion_mask else None
index = pd.read_csv(snakemake.input.index, sep="\t", dtype=ids)
parts = pd.read_csv(snakemake.input.scans, sep="\t", dtype=ids)[["scan_id", "part"]]
test = index.merge(parts, on="scan_id").query("part == 'test'").sort_values("row")
truth = (
    pd.read_csv(Path(snakemake.input.truth) / "scans.tsv", sep="\t", dtype=ids)
    if snakemake.input.truth
    else None
)

summary = attention_summary(model, volumes, brain, lesions, test["row"], test["scan_id"])
summary.to_csv(snakemake.output.mass, sep="\t", index=False)
logging.info("mean attention mass: %s", summary.iloc[-1].to_dict())
cases = choose_cases(test, truth)
heatmaps = {row: gradcam(model, np.asarray(volumes[row], dtype=np.float32)) for _, row, _ in cases}
fig3_attention(
    volumes,
    heatmaps,
    lesions,
    cases,
    Path(snakemake.output.fig3[0]).with_suffix(""),
    snakemake.params.synthetic,
)

"""Figure 2 (confusion matrices), supp. figure 4 (ROC), calibration and decision curves."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.figures.performance import (
    calibration_figure,
    decision_curve_figure,
    fig2_confusion,
    roc_band,
    supp_fig4_roc,
)

scans = pd.read_csv(snakemake.input.test_scans, sep="\t", dtype={"patient_id": str, "scan_id": str})
models = snakemake.params.models
raters = [column.removeprefix("p_") for column in scans.columns if column.startswith("p_")]
readers = [rater for rater in raters if rater not in models]
y, synthetic, params = scans["y_true"].to_numpy(), snakemake.params.synthetic, snakemake.params.evaluate
probabilities = {model: scans[f"p_{model}"].to_numpy() for model in models}
calls = {rater: scans[f"call_{rater}"].to_numpy() for rater in [models[0], *readers]}
stem = {
    name: Path(getattr(snakemake.output, name)[0]).with_suffix("")
    for name in ("fig2", "roc", "calibration", "decision_curve")
}

fig2_confusion(y, calls, stem["fig2"], synthetic)
band = roc_band(
    y, probabilities[models[0]], scans["patient_id"], models[0], params["n_bootstrap"], params["seed"]
)
supp_fig4_roc(
    y, probabilities, {reader: calls[reader] for reader in readers}, stem["roc"], synthetic, band=band
)
calibration_figure(y, probabilities, stem["calibration"], synthetic)
decision_curve_figure(y, probabilities, stem["decision_curve"], synthetic)

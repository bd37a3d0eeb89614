"""CTNet + clinical variables by late fusion, chosen and fitted on the validation scans (htct.clinical)."""

import json
import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.clinical import fit_fusion, fusion_predictions
from htct.sheets import load_clinical

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
ids = {"patient_id": str, "scan_id": str}
clinical = load_clinical(snakemake.input.clinical)
ctnet = pd.read_csv(snakemake.input.ctnet, sep="\t", dtype=ids)
clinical_predictions = pd.read_csv(snakemake.input.clinical_predictions, sep="\t", dtype=ids)
params = snakemake.params.fusion
model = fit_fusion(
    ctnet, clinical_predictions, clinical, params["fusion_cv_folds"], params["seed"], params["c"]
)
logging.info("fusion variants on the validation scans:\n%s", model.selection.to_string())
fusion_predictions(model, ctnet, clinical_predictions, clinical).to_csv(
    snakemake.output.predictions, sep="\t", index=False
)
model.selection.to_csv(snakemake.output.selection, sep="\t", index=False)
model.coefficients.to_frame().to_csv(snakemake.output.coefficients, sep="\t", index_label="term")
threshold = {
    "threshold": model.threshold,
    "method": "youden_j_on_out_of_fold_validation",
    "variant": model.variant,
    "n_fitted_scans": len(model.fitted_on),
    "synthetic": snakemake.params.synthetic,
}
Path(snakemake.output.threshold).write_text(json.dumps(threshold, indent=2) + "\n")

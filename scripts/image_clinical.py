"""Image and clinical information on the test set: the table, the "adds to" claims, results by treatment."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.clinical.evaluate import MODELS, evaluate_image_clinical
from htct.sheets import load_clinical, load_readers
from htct.tables.clinical import write_image_clinical_tables

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
ids = {"patient_id": str, "scan_id": str}
predictions = {
    m: pd.read_csv(p, sep="\t", dtype=ids) for m, p in zip(MODELS, snakemake.input.predictions, strict=True)
}
scans = pd.read_csv(snakemake.input.scans, sep="\t", dtype=ids)
test_scans = scans.loc[scans["part"] == "test", "scan_id"]
readers = load_readers(snakemake.input.readers, test_scans) if snakemake.input.readers else None
evaluate = snakemake.params.evaluate
truth = snakemake.input.truth or None
out = evaluate_image_clinical(
    predictions,
    readers,
    load_clinical(snakemake.input.clinical),
    truth,
    evaluate["n_bootstrap"],
    evaluate["seed"],
    evaluate["reader_threshold"],
    snakemake.params.ceiling_threshold,
)
for name in ("metrics", "claims", "treatment", "interaction"):
    out[name].to_csv(getattr(snakemake.output, f"{name}_tsv"), sep="\t", index=False)
outputs = {
    "image_clinical": "table",
    "claims": "claims",
    "treatment": "treatment",
    "interaction": "interaction",
}
stems = {
    table: str(Path(getattr(snakemake.output, output)).with_suffix("")) for table, output in outputs.items()
}
write_image_clinical_tables(out, stems, evaluate["n_bootstrap"], snakemake.params.synthetic)

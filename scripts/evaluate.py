"""Test-set evaluation: patient-level bootstrap, tables 2-3, agreement and DeLong/McNemar tests."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import pandas as pd

from htct.evaluate.study import evaluate_study
from htct.sheets import load_readers
from htct.tables import write_table
from htct.tables.reader_study import TABLE2_METRICS, TABLE3_METRICS, undefined_resamples_note

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
ids = {"patient_id": str, "scan_id": str}
params = snakemake.params.evaluate
predictions = {
    model: pd.read_csv(path, sep="\t", dtype=ids)
    for model, path in zip(snakemake.params.models, snakemake.input.predictions, strict=True)
}
scans = pd.read_csv(snakemake.input.scans, sep="\t", dtype=ids)
test_scans = scans.loc[scans["part"] == "test", "scan_id"]
readers = load_readers(snakemake.input.readers, test_scans) if snakemake.input.readers else None
out = evaluate_study(
    predictions,
    readers,
    params["n_bootstrap"],
    params["seed"],
    params["ci_method"],
    params["reader_threshold"],
)
out["metrics"].to_csv(snakemake.output.metrics, sep="\t", index=False)
out["scans"].to_csv(snakemake.output.test_scans, sep="\t", index=False)
out["agreement_numeric"].to_csv(snakemake.output.agreement, sep="\t")
out["fleiss_kappa"].to_csv(snakemake.output.fleiss, sep="\t", index=False)
ci = f"95% CI, patient-level bootstrap ({params['n_bootstrap']} resamples, {params['ci_method']})"
models = list(predictions)
table2_raters = [r for r in dict.fromkeys(out["metrics"]["rater"]) if r not in models[1:]]
undefined = {  # table -> note on the resamples left out of its intervals ("" when none)
    "table2": undefined_resamples_note(out["metrics"], table2_raters, TABLE2_METRICS, params["n_bootstrap"]),
    "table3": undefined_resamples_note(out["metrics"], models, TABLE3_METRICS, params["n_bootstrap"]),
}
# Without a reader study (data.readers empty) table 2 has CTNet alone and agreement is among the models.
raters = "CTNet and clinicians" if readers is not None else "CTNet (no reader study: data.readers is empty)"
tables = {  # table -> (output holding its .html, title)
    "table2": (
        "table2",
        f"Table 2. {raters} on the test set, % ({ci}); last row: every scan called HT, for reference. "
        f"{undefined['table2']}".strip(),
    ),
    "table3": (
        "table3",
        f"Table 3. CTNet and the re-implemented models on the test set, % ({ci}); F1 is macro-averaged; "
        "last row: every scan called HT, for reference. "
        f"{undefined['table3']}".strip(),
    ),
    "agreement": (
        "agreement_table",
        "Pairwise percent agreement and Cohen's kappa of the calls "
        + ("(clinicians and CTNet)" if readers is not None else "(the models; no reader study)"),
    ),
    "tests": (
        "tests",
        "CTNet against every rater: DeLong test of AUC (Obuchowski's patient-clustered variance; z is CTNet "
        "minus the rater, > 0 where CTNet's AUC is higher, as in the claims) and patient-level McNemar test "
        "of correct calls (Durkalski)",
    ),
}
for name, (output, title) in tables.items():
    stem = Path(getattr(snakemake.output, output)).with_suffix("")
    write_table(out[name], stem, title, synthetic=snakemake.params.synthetic, tidy=out[f"{name}_tidy"])

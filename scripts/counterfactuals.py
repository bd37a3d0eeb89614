"""Every model's logit change when one image factor is removed from a test scan, beside the oracle's."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")

from htct.attribution.counterfactual import counterfactual_deltas, summarise, summary_table  # noqa: E402
from htct.tables import write_table  # noqa: E402

deltas = counterfactual_deltas(snakemake.params.variants, snakemake.params.factors)
deltas.to_csv(snakemake.output.deltas, sep="\t", index=False, float_format="%.6g")
summary = summarise(deltas, **snakemake.params.bootstrap)
summary.to_csv(snakemake.output.summary, sep="\t", index=False, float_format="%.6g")
title = (
    "Counterfactual test: logit change when one image factor is removed from a test scan "
    "(mean, 95% CI over patients), beside the image-only oracle's change"
)
write_table(
    summary_table(summary), Path(snakemake.output.table).with_suffix(""), title, synthetic=True, tidy=summary
)

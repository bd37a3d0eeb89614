"""The skull-strip comparison's arrays from the full-head ones (htct.preprocess.skull_strip_arrays)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")

from htct.preprocess import ArrayOutputs, skull_strip_arrays  # noqa: E402

skull_strip_arrays(ArrayOutputs.from_rule(snakemake.input), ArrayOutputs.from_rule(snakemake.output))

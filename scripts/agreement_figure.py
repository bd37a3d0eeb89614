"""Additional figure A3: pairwise agreement and Cohen's kappa of the raters' HT calls (heatmaps)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

import pandas as pd

from htct.figures import agreement_figure

agreement = pd.read_csv(snakemake.input.agreement, sep="\t", index_col=[0, 1])
stem = Path(snakemake.output.figure[0]).with_suffix("")
agreement_figure(
    agreement.loc["percent_agreement"], agreement.loc["cohen_kappa"], stem, snakemake.params.synthetic
)

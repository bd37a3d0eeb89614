"""Figure 1: the workflow's own rule graph (`snakemake --rulegraph`), rendered with matplotlib."""

import subprocess
import sys
import tempfile
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # htct importable in any conda env

from htct.errors import report_input_errors

report_input_errors()

import yaml

from htct.figures.pipeline import fig1_pipeline

# The graph is drawn for the configuration of this run, command-line overrides included.
with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
    yaml.safe_dump(dict(snakemake.params.config), handle)
command = [
    snakemake.params.python,
    "-m",
    "snakemake",
    "--snakefile",
    snakemake.params.snakefile,
    "--configfile",
    handle.name,
    "--rulegraph",
    "--nolock",
    "--quiet",
    "all",
]
result = subprocess.run(command, capture_output=True, text=True, check=False)
Path(handle.name).unlink()
if result.returncode != 0:
    raise RuntimeError(f"snakemake --rulegraph failed:\n{result.stderr}")
dot = result.stdout[result.stdout.index("digraph") :]
Path(snakemake.output.dot).write_text(dot)
stem = Path(snakemake.output.fig1[0]).with_suffix("")
fig1_pipeline(dot, stem, snakemake.params.synthetic, omit=snakemake.params.omit)

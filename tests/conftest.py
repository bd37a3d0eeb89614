"""Shared fixtures: paths to the repository, the shared reference data, and a tiny workflow run."""

import subprocess
import sys
from pathlib import Path

import pytest

from htct.testing.workflow import copy_workflow  # noqa: F401  (tests import it from here)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (the project's ../shared/data)")
    return SHARED_DATA


def run_snakemake(
    workdir: Path,
    *args: str,
    check: bool = True,
    configfiles: tuple[str, ...] = ("tests/config/tiny.yaml",),
) -> subprocess.CompletedProcess:
    """Run Snakemake with this interpreter in `workdir`; on failure show its output and the job logs.

    `configfiles` are given to one --configfile in order (later ones override keys of earlier
    ones; a second --configfile would replace the first). `args` must not be targets: they follow
    --configfile, which takes every word up to the next option as a file.
    """
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "2",
        "--configfile",
        *configfiles,
        *args,
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if check and result.returncode != 0:
        logs = "\n".join(
            f"--- {log}\n{log.read_text()[-3000:]}" for log in sorted((workdir / "logs").rglob("*.log"))
        )
        pytest.fail(f"snakemake failed ({result.returncode}):\n{result.stderr[-6000:]}\n{logs}")
    return result


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The whole DAG on the tiny synthetic config (about two minutes on 2 cores), run once per session."""
    workdir = copy_workflow(tmp_path_factory.mktemp("tiny_run"))
    run_snakemake(workdir)
    return workdir

"""A copy of the workflow as a fresh clone has it, for the end-to-end tests and bench_dag.py."""

from __future__ import annotations

import shutil
from pathlib import Path

#: The repository root (src/htct/testing -> the checkout).
REPO = Path(__file__).resolve().parents[3]
WORKFLOW_FILES = (
    "Snakefile",
    "config.yaml",
    "config",
    "rules",
    "scripts",
    "schemas",
    "envs",
    "report",
    "src",
    "resources/paper",
    "resources/tripod_ai.yaml",
    "tests/config",
)


def copy_workflow(dest: str | Path, source_root: str | Path = REPO) -> Path:
    """Copy the workflow (not results/ or the generated resources/synthetic/) into ``dest``.

    Args:
        dest: the folder to copy into.
        source_root: the repository by default; an earlier run's folder reruns its exact code.

    Returns:
        ``dest``.
    """
    dest, source_root = Path(dest), Path(source_root)
    for name in WORKFLOW_FILES:
        source, target = source_root / name, dest / name
        if not source.exists():
            continue
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest

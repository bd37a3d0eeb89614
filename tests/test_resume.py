"""A crash during training loses no work: the rerun resumes from the last checkpoint, same predictions.

Snakemake is killed (SIGKILL, its whole process group, as a power cut or an OOM killer would) while
the CTNet job trains; the user then types `snakemake --unlock` and
`snakemake --cores all --rerun-incomplete` (docs/troubleshooting.md). The rerun must resume at the checkpoint's epoch and end with predictions
byte-identical to an uninterrupted training.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, copy_workflow

pytestmark = pytest.mark.slow

EPOCHS = 16  # 0.1-2 s each on the tiny arrays (2 busy cores): long enough to be killed mid-way
TARGET = "results/predictions/ctnet.tsv"


def snakemake(*args: str) -> list[str]:
    """The command line (targets before --configfile, which takes every following word as a file)."""
    return [sys.executable, "-m", "snakemake", "--cores", "2", *args, "--configfile", "resume.yaml"]


def completed_epoch(checkpoint: Path) -> int:
    """The last completed epoch saved in the checkpoint (0 while none is readable yet)."""
    try:
        return int(torch.load(checkpoint, map_location="cpu", weights_only=False)["state"]["epoch"])
    except (OSError, RuntimeError, EOFError, KeyError):
        return 0


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """A tiny workflow whose run was killed after training's second epoch."""
    workdir = copy_workflow(tmp_path_factory.mktemp("resume"))
    config = yaml.safe_load((REPO / "tests/config/tiny.yaml").read_text())
    config["train"] |= {"models": ["ctnet"], "epochs": EPOCHS, "patience": EPOCHS}
    (workdir / "resume.yaml").write_text(yaml.safe_dump(config))
    checkpoint = workdir / "results/models/ctnet/checkpoint.pt"
    with open(workdir / "first_run.log", "w") as output:
        run = subprocess.Popen(
            snakemake(TARGET),
            cwd=workdir,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 480
        while run.poll() is None and time.monotonic() < deadline:
            if checkpoint.exists() and completed_epoch(checkpoint) >= 2:
                break
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGKILL)  # snakemake and its training job (same process group)
        run.wait()
    killed_at = completed_epoch(checkpoint)
    assert 2 <= killed_at < EPOCHS, (
        f"not killed during training: {(workdir / 'first_run.log').read_text()[-3000:]}"
    )
    return workdir, killed_at


def test_no_output_of_the_killed_job_looks_complete(crashed):
    workdir, _ = crashed
    checkpoint = workdir / "results/models/ctnet/checkpoint.pt"
    mtime = checkpoint.stat().st_mtime
    time.sleep(1.0)
    assert checkpoint.stat().st_mtime == mtime  # the training process died with snakemake
    assert not (workdir / TARGET).exists() and not (workdir / "results/models/ctnet/weights.pt").exists()
    # epochs.tsv is rewritten after every epoch: Snakemake knows the job never finished.
    plan = subprocess.run(snakemake(TARGET, "-n"), cwd=workdir, capture_output=True, text=True)
    output = plan.stdout + plan.stderr
    assert plan.returncode != 0
    assert "IncompleteFilesException" in output and "results/models/ctnet/epochs.tsv" in output
    assert "rerun your command with the --rerun-incomplete flag" in output


def test_rerun_resumes_and_equals_an_uninterrupted_run(crashed):
    workdir, killed_at = crashed
    locked = subprocess.run(
        snakemake(TARGET, "--rerun-incomplete"), cwd=workdir, capture_output=True, text=True
    )
    assert (
        locked.returncode != 0
        and "It can be removed with the --unlock argument" in locked.stdout + locked.stderr
    )
    subprocess.run(snakemake("--unlock"), cwd=workdir, capture_output=True, check=True)
    rerun = subprocess.run(
        snakemake(TARGET, "--rerun-incomplete"), cwd=workdir, capture_output=True, text=True
    )
    log = (workdir / "logs/train/ctnet.log").read_text()
    assert rerun.returncode == 0, rerun.stderr[-3000:] + log[-3000:]
    resumed = re.search(r"ctnet: resuming from \S+checkpoint\.pt after epoch (\d+)", log)
    assert resumed and int(resumed.group(1)) == killed_at > 0, log[:2000]
    assert f"epoch {killed_at + 1}/{EPOCHS}" in log and f"epoch 1/{EPOCHS}" not in log
    resumed_predictions = (workdir / TARGET).read_bytes()
    resumed_threshold = (workdir / "results/models/ctnet/threshold.json").read_bytes()

    # The same training without interruption, on the same arrays and split.
    for path in (workdir / "results/models/ctnet").iterdir():
        path.unlink()
    (workdir / TARGET).unlink()
    fresh = subprocess.run(snakemake(TARGET), cwd=workdir, capture_output=True, text=True)
    log = (workdir / "logs/train/ctnet.log").read_text()
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "resuming" not in log and f"epoch 1/{EPOCHS}" in log
    assert (workdir / TARGET).read_bytes() == resumed_predictions
    assert (workdir / "results/models/ctnet/threshold.json").read_bytes() == resumed_threshold

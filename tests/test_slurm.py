"""The SLURM profiles (profiles/slurm, profiles/slurm-cpu) on a real one-node SLURM cluster.

The cluster tests start tests/slurm/start-cluster.sh (slurmctld, slurmd and munge from Debian,
installed with apt-get when missing; needs root) unless a test cluster is already up, and stop the
daemons they started at the end. They run the workflow's tiny config through the SLURM executor and
compare its tables with a local run, and check retries, failures and GPU requests with the toy
workflow tests/slurm/Snakefile.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, copy_workflow

SLURM_TESTS = REPO / "tests" / "slurm"
TOY_SNAKEFILE = SLURM_TESTS / "Snakefile"
GPU_PROFILE = REPO / "profiles" / "slurm"
CPU_PROFILE = REPO / "profiles" / "slurm-cpu"
TRAINING_RULES = ("train", "train_fold", "train_skull_strip_comparison")

# The test cluster has no accounting database (slurmdbd), so job states come from squeue; its
# MinJobAge (600 s) keeps finished jobs visible far longer than 3 x the first status check, which
# is short here so that the tests do not wait 20 s per job.
INIT_SECONDS = 1
TEST_CLUSTER_ARGS = (
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    str(INIT_SECONDS),
    "--latency-wait",
    "5",
)


def _load_profile(profile_dir: Path) -> dict:
    return yaml.safe_load((profile_dir / "config.yaml").read_text())


# ---------------------------------------------------------------------------------------------
# The profiles themselves (fast, no cluster)


def test_profiles_use_the_slurm_executor_and_standard_resources():
    for profile_dir in (GPU_PROFILE, CPU_PROFILE):
        profile = _load_profile(profile_dir)
        assert profile["executor"] == "slurm"
        assert profile["retries"] >= 1
        assert {"mem_mb", "runtime"} <= set(profile["default-resources"])
        # GPUs, partitions and accounts go through resources, never through raw sbatch flags.
        for resources in profile["set-resources"].values():
            assert "slurm_extra" not in resources


def test_gpu_profile_asks_a_gpu_for_training_and_cpu_profile_none():
    gpu, cpu = _load_profile(GPU_PROFILE), _load_profile(CPU_PROFILE)
    for rule in TRAINING_RULES:
        assert gpu["set-resources"][rule]["gpu"] == 1
        assert cpu["set-resources"][rule]["gpu"] == 0
    assert cpu["config"]["train"]["device"] == "cpu"
    assert "config" not in gpu


def test_cpu_profile_differs_from_gpu_profile_only_in_training():
    gpu, cpu = _load_profile(GPU_PROFILE), _load_profile(CPU_PROFILE)
    shared_keys = (set(gpu) | set(cpu)) - {"set-resources", "config"}
    for key in shared_keys:
        assert gpu.get(key) == cpu.get(key), key
    assert set(gpu["set-resources"]) == set(cpu["set-resources"]) == set(TRAINING_RULES)


def test_profiles_name_rules_that_exist():
    rule_text = "".join((REPO / "rules" / name).read_text() for name in ("train.smk", "attribution.smk"))
    for rule in TRAINING_RULES:
        assert f"rule {rule}:" in rule_text, rule


# ---------------------------------------------------------------------------------------------
# A real cluster


def _cluster_is_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    # A node busy with someone's jobs (mixed, allocated) is up too; a down or drained one is not.
    usable = {"idle", "mixed", "allocated", "completing"}
    return result.returncode == 0 and bool(usable & set(result.stdout.split()))


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A one-node SLURM cluster on this machine: one already up (e.g. started by CI), or ours."""
    if _cluster_is_up():
        yield None
        return
    if shutil.which("sbatch") is None and os.geteuid() != 0:
        pytest.skip("SLURM is not installed and installing it (tests/slurm/start-cluster.sh) needs root")
    state_dir = tmp_path_factory.mktemp("slurm-state")
    started = subprocess.run(
        ["bash", str(SLURM_TESTS / "start-cluster.sh"), str(state_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        assert started.returncode == 0, f"start-cluster.sh failed:\n{started.stderr[-4000:]}"
        yield state_dir
    finally:
        subprocess.run(["bash", str(SLURM_TESTS / "stop-cluster.sh"), str(state_dir)], timeout=120)


def _run_on_slurm(
    workdir: Path, *args: str, timeout: int, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Snakemake with this interpreter in `workdir` through the SLURM executor; output in .stdout."""
    command = [sys.executable, "-m", "snakemake", *args, *TEST_CLUSTER_ARGS]
    # stderr into stdout: Snakemake's messages are on stderr, in the order the user sees them.
    return subprocess.run(
        command,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="module")
def toy_runs(slurm_cluster, tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """The toy workflow's targets, each in its own directory, run at the same time (they wait on polls)."""
    runs = {
        "flaky": (CPU_PROFILE, "flaky"),
        "always_fail": (CPU_PROFILE, "always_fail"),
        "train_gpu": (GPU_PROFILE, "train"),
        "train_cpu": (CPU_PROFILE, "train"),
    }
    processes = {}
    for name, (profile, target) in runs.items():
        workdir = tmp_path_factory.mktemp(f"toy_{name}")
        command = [sys.executable, "-m", "snakemake", "-s", str(TOY_SNAKEFILE), "--profile", str(profile)]
        command += [*TEST_CLUSTER_ARGS, target]
        processes[name] = (
            workdir,
            subprocess.Popen(
                command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            ),
        )
    results = {}
    for name, (workdir, process) in processes.items():
        try:
            stdout, _ = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, _ = process.communicate()
        results[name] = (workdir, subprocess.CompletedProcess(process.args, process.returncode, stdout))
    return results


def _slurm_job_logs(workdir: Path, rule: str) -> list[Path]:
    return sorted((workdir / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob("*.log"))


@pytest.mark.slow
def test_cluster_keeps_finished_jobs_long_enough_for_squeue(slurm_cluster):
    from snakemake_executor_plugin_slurm.job_status_query import get_min_job_age

    # The plugin falls back to sacct (which fails without slurmdbd) when MinJobAge is shorter.
    assert get_min_job_age() >= 3 * INIT_SECONDS


@pytest.mark.slow
def test_failed_job_is_retried_and_the_run_completes(toy_runs):
    workdir, run = toy_runs["flaky"]
    assert run.returncode == 0, run.stdout[-4000:]
    assert "Trying to restart job" in run.stdout
    assert (workdir / "flaky.txt").read_text() == "ok\n"
    assert (workdir / "logs" / "flaky.log").read_text() == "second attempt\n"
    # Two SLURM jobs: the failed one keeps its log, the successful one's is removed.
    assert run.stdout.count("has been submitted with SLURM jobid") == 2
    assert len(_slurm_job_logs(workdir, "flaky")) == 1


@pytest.mark.slow
def test_job_failing_every_attempt_ends_the_run_naming_its_log(toy_runs):
    workdir, run = toy_runs["always_fail"]
    assert run.returncode != 0
    assert "Error in rule always_fail" in run.stdout
    assert "log: logs/always_fail.log" in run.stdout
    assert "SLURM status is: 'FAILED'" in run.stdout
    assert (workdir / "logs" / "always_fail.log").read_text() == "this rule always fails\n"
    assert not (workdir / "always_fail.txt").exists()
    # Retried once (profile retries: 1), then given up: both SLURM logs are kept for the user.
    assert len(_slurm_job_logs(workdir, "always_fail")) == 2


@pytest.mark.slow
def test_gpu_request_on_gpu_less_node_is_refused_by_sbatch(toy_runs):
    workdir, run = toy_runs["train_gpu"]
    assert run.returncode != 0
    assert "SLURM sbatch failed" in run.stdout
    assert "Invalid generic resource (gres) specification" in run.stdout
    assert "--gpus=1" in run.stdout
    assert not (workdir / "train.txt").exists()


@pytest.mark.slow
def test_cpu_profile_runs_training_without_gpu(toy_runs):
    workdir, run = toy_runs["train_cpu"]
    assert run.returncode == 0, run.stdout[-4000:]
    assert "--gpus" not in run.stdout
    # Ran as a SLURM job, with no GPU made visible to it.
    assert re.fullmatch(r"CUDA_VISIBLE_DEVICES= SLURM_JOB_ID=\d+\n", (workdir / "train.txt").read_text())


def _result_tables(workdir: Path) -> dict[str, bytes]:
    results = workdir / "results"
    paths = [
        *sorted((results / "tables").glob("*")),
        *sorted((results / "predictions").glob("*.tsv")),
        results / "split" / "split.tsv",
        results / "numbers.json",
    ]
    return {str(path.relative_to(workdir)): path.read_bytes() for path in paths if path.is_file()}


@pytest.mark.slow
def test_tiny_workflow_on_slurm_gives_the_tables_of_a_local_run(slurm_cluster, tiny_run, tmp_path_factory):
    # The same code as the local run: its copy of the workflow, and of src/ on PYTHONPATH ahead of
    # the editable install, so that edits to the repository since then cannot make the tables differ.
    workdir = copy_workflow(tmp_path_factory.mktemp("tiny_slurm"), source_root=tiny_run)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(workdir / "src"), os.environ.get("PYTHONPATH")])),
    }
    run = _run_on_slurm(
        workdir,
        "--configfile",
        "tests/config/tiny.yaml",
        "--profile",
        str(CPU_PROFILE),
        timeout=1200,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-6000:]
    # The heavy rules went through sbatch ("Job 3 has been submitted with SLURM jobid 12 (log:
    # .../slurm_logs/rule_train/ctnet/12.log)"); SLURM logs of successful jobs are deleted.
    submitted = [line for line in run.stdout.splitlines() if "has been submitted with SLURM jobid" in line]
    for rule in ("synth_cohort", "convert_dicom", "preprocess", "train"):
        assert any(f"/slurm_logs/rule_{rule}/" in line for line in submitted), rule
    local, on_slurm = _result_tables(tiny_run), _result_tables(workdir)
    assert any(name.startswith("results/tables/table2") for name in local)
    assert sorted(on_slurm) == sorted(local)
    for name, content in local.items():
        assert on_slurm[name] == content, name

"""The SLURM profiles (profiles/slurm, profiles/slurm-cpu) on a real one-node SLURM cluster.

The cluster tests start tests/slurm/start-cluster.sh (slurmctld, slurmd, munge, and slurmdbd with
a MariaDB of its own for accounting, from Debian, installed with apt-get when missing; needs root)
unless a test cluster is already up, and stop the daemons they started at the end. They run the
workflow's tiny config through the SLURM executor and compare its tables with a local run, and
check retries, failures and GPU requests with the toy workflow tests/slurm/Snakefile.

Job states come from `sacct`, the executor plugin's default status command where accounting is set
up (as at most sites); one run checks the `squeue` variant (`slurm-status-command: squeue`, for
clusters without accounting). Which command the plugin really called is recorded by wrappers of
sacct and squeue put first on the PATH of each run.
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

# The first status check is early here so that the tests do not wait 20 s per job. The status
# command is left to the plugin (sacct, with accounting); the test cluster's MinJobAge (600 s) keeps
# finished jobs visible to squeue far longer than 3 x INIT_SECONDS, for the squeue variant.
INIT_SECONDS = 1
TEST_CLUSTER_ARGS = (
    "--slurm-init-seconds-before-status-checks",
    str(INIT_SECONDS),
    "--latency-wait",
    "5",
)
SQUEUE_ARGS = ("--slurm-status-command", "squeue")
# The plugin's status queries (snakemake_executor_plugin_slurm.job_status_query), told apart from
# its other calls of the same tools (sacct guesses the account) by their output format.
STATUS_QUERY_FORMATS = {"sacct": "--format=JobIdRaw,State", "squeue": "--format=%i|%T"}
DEFAULT_ACCOUNT, OTHER_ACCOUNT = "htct", "htct_project"  # the test cluster's accounts (start-cluster.sh)


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


@pytest.fixture(scope="module")
def accounting(slurm_cluster) -> None:
    """The cluster stores jobs in slurmdbd, so that sacct knows them (start-cluster.sh's default)."""
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    if "accounting_storage/slurmdbd" not in config:
        pytest.fail(
            "the running test cluster has no accounting (AccountingStorageType is not slurmdbd): stop it and "
            "start it again with tests/slurm/start-cluster.sh, which sets up slurmdbd"
        )


@pytest.fixture(scope="module")
def query_wrappers(tmp_path_factory) -> Path:
    """A folder with `sacct` and `squeue` that log their arguments to $HTCT_SLURM_QUERY_LOG, then run
    the real command; first on a run's PATH, it shows which status command the plugin used."""
    folder = tmp_path_factory.mktemp("slurm_query_wrappers")
    for tool in STATUS_QUERY_FORMATS:
        real = shutil.which(tool)
        assert real, f"{tool} not found"
        wrapper = folder / tool
        wrapper.write_text(
            "#!/bin/sh\n"
            f'[ -n "$HTCT_SLURM_QUERY_LOG" ] && echo "{tool} $*" >> "$HTCT_SLURM_QUERY_LOG"\n'
            f'exec {real} "$@"\n'
        )
        wrapper.chmod(0o755)
    return folder


def _slurm_env(workdir: Path, wrappers: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(env or os.environ)
    env["PATH"] = os.pathsep.join([str(wrappers), env.get("PATH", "")])
    env["HTCT_SLURM_QUERY_LOG"] = str(workdir / "slurm_queries.log")
    return env


def status_queries(workdir: Path) -> dict[str, int]:
    """How many status queries the run made with sacct and with squeue."""
    log = workdir / "slurm_queries.log"
    lines = log.read_text().splitlines() if log.is_file() else []
    return {
        tool: sum(1 for line in lines if line.startswith(f"{tool} ") and marker in line)
        for tool, marker in STATUS_QUERY_FORMATS.items()
    }


def submitted_job_ids(stdout: str) -> list[str]:
    """SLURM job ids of the run ("Job 3 has been submitted with SLURM jobid 12 (log: ...)")."""
    return re.findall(r"has been submitted with SLURM jobid (\d+)", stdout)


def accounting_records(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """job id -> (state, account) as the accounting database (sacct) has them."""
    result = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids), "--format=JobIdRaw,State,Account"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split("|") for line in result.stdout.splitlines() if line]
    return {job_id: (state.split()[0], account) for job_id, state, account in rows}


def _run_on_slurm(
    workdir: Path, *args: str, timeout: int, env: dict[str, str] | None = None, wrappers: Path
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
        env=_slurm_env(workdir, wrappers, env),
    )


@pytest.fixture(scope="module")
def toy_runs(
    slurm_cluster, accounting, query_wrappers, tmp_path_factory
) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """The toy workflow's targets, each in its own directory, run at the same time (they wait on polls).

    Job states come from sacct (the plugin's default) except in `flaky_squeue`, the squeue variant.
    """
    runs = {
        "flaky": (CPU_PROFILE, "flaky", ()),
        "flaky_squeue": (CPU_PROFILE, "flaky", SQUEUE_ARGS),
        "always_fail": (CPU_PROFILE, "always_fail", ()),
        "train_gpu": (GPU_PROFILE, "train", ()),
        "train_cpu": (CPU_PROFILE, "train", ("--set-resources", f"train:slurm_account={OTHER_ACCOUNT}")),
    }
    processes = {}
    for name, (profile, target, extra) in runs.items():
        workdir = tmp_path_factory.mktemp(f"toy_{name}")
        # The profiles are used from the repository root, where the config file they load lies
        # (configfiles: config/repeats_full.yaml); the toy workflow's directory stands in for it.
        (workdir / "config").mkdir()
        shutil.copy(REPO / "config" / "repeats_full.yaml", workdir / "config")
        # The target first: options such as --set-resources take every following word.
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(TOY_SNAKEFILE),
            target,
            "--profile",
            str(profile),
        ]
        command += [*TEST_CLUSTER_ARGS, *extra]
        processes[name] = (
            workdir,
            subprocess.Popen(
                command,
                cwd=workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=_slurm_env(workdir, query_wrappers),
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

    # With a shorter MinJobAge the plugin would not use squeue even when told to (it falls back to sacct).
    assert get_min_job_age() >= 3 * INIT_SECONDS


@pytest.mark.slow
def test_job_states_come_from_sacct_by_default(toy_runs):
    for name in ("flaky", "always_fail", "train_cpu"):
        workdir, run = toy_runs[name]
        queries = status_queries(workdir)
        assert queries["sacct"] >= 1 and queries["squeue"] == 0, (name, queries)
        assert "Falling back to" not in run.stdout and "'sacct' unavailable" not in run.stdout


@pytest.mark.slow
def test_accounting_holds_every_attempt_with_its_state_and_account(toy_runs):
    # The flaky job's two attempts: the first failed, the retry completed.
    _, run = toy_runs["flaky"]
    job_ids = submitted_job_ids(run.stdout)
    assert len(job_ids) == 2
    # Without slurm_account the plugin's guess fails (2.8.0 hands `| tail -1` to sacct as arguments),
    # so jobs go to the user's default account; profiles/README.md says so.
    assert "not able to get a SLURM account via sacct" in run.stdout
    expected = {job_ids[0]: ("FAILED", DEFAULT_ACCOUNT), job_ids[1]: ("COMPLETED", DEFAULT_ACCOUNT)}
    assert accounting_records(job_ids) == expected
    # With slurm_account (the profiles' placeholder) the plugin checks it with sacctmgr and charges it.
    _, run = toy_runs["train_cpu"]
    assert list(accounting_records(submitted_job_ids(run.stdout)).values()) == [("COMPLETED", OTHER_ACCOUNT)]


@pytest.mark.slow
def test_squeue_variant_retries_and_completes(toy_runs):
    workdir, run = toy_runs["flaky_squeue"]
    assert run.returncode == 0, run.stdout[-4000:]
    assert (
        "Trying to restart job" in run.stdout and run.stdout.count("has been submitted with SLURM jobid") == 2
    )
    assert (workdir / "flaky.txt").read_text() == "ok\n"
    queries = status_queries(workdir)
    assert queries["squeue"] >= 1 and queries["sacct"] == 0, queries


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
def test_tiny_workflow_on_slurm_gives_the_tables_of_a_local_run(
    slurm_cluster, accounting, query_wrappers, tiny_run, tmp_path_factory
):
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
        wrappers=query_wrappers,
    )
    assert run.returncode == 0, run.stdout[-6000:]
    # The heavy rules went through sbatch ("Job 3 has been submitted with SLURM jobid 12 (log:
    # .../slurm_logs/rule_train/ctnet/12.log)"); SLURM logs of successful jobs are deleted.
    submitted = [line for line in run.stdout.splitlines() if "has been submitted with SLURM jobid" in line]
    for rule in ("synth_cohort", "convert_dicom_shard", "preprocess_shard", "preprocess", "train"):
        assert any(f"/slurm_logs/rule_{rule}/" in line for line in submitted), rule
    # Watched through sacct, which has every job as completed.
    queries = status_queries(workdir)
    assert queries["sacct"] >= 1 and queries["squeue"] == 0, queries
    records = accounting_records(submitted_job_ids(run.stdout))
    assert len(records) == len(submitted) and {state for state, _ in records.values()} == {"COMPLETED"}
    local, on_slurm = _result_tables(tiny_run), _result_tables(workdir)
    assert any(name.startswith("results/tables/table2") for name in local)
    assert sorted(on_slurm) == sorted(local)
    for name, content in local.items():
        assert on_slurm[name] == content, name

"""The configuration of an own cohort: unknown keys, data paths, the example config, dry runs.

htct.config is tested directly; the dry runs (`snakemake -n`, a few seconds each) check what a user
sees: one HTCT-ERROR line before any job, or a DAG without any synthetic job.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import REPO, copy_workflow

from htct.config import SYNTHETIC_DATA, resolve_data, unknown_keys, unknown_models
from htct.errors import HTCTInputError

SCHEMA = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
EXAMPLE = REPO / "config" / "own_cohort.example.yaml"
CLINICAL = "patient_id,label,age,sex,medication\nP1,0,60,F,none\nP2,1,70,M,none\n"


# --- unknown keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"train": {"epoch": 2}}, "config `train.epoch`: unknown key; did you mean `epochs`?"),
        ({"trian": {"epochs": 2}}, "config `trian`: unknown key; did you mean `train`?"),
        ({"data": {"dicomdir": "x"}}, "config `data.dicomdir`: unknown key; did you mean `dicom_dir`?"),
        ({"evaluate": {"n_boot": 5}}, "config `evaluate.n_boot`: unknown key; did you mean `n_bootstrap`?"),
        (
            {"preprocess": {"colour": "red"}},
            "config `preprocess.colour`: unknown key; keys of preprocess: n_slices, size, skull_strip, "
            "slice_thickness_mm, windows",
        ),
    ],
)
def test_unknown_key_names_the_closest_valid_key(config, message):
    problems = unknown_keys(config, SCHEMA)
    assert len(problems) == 1
    assert problems[0].startswith(message) and "\n" not in problems[0]


def test_unknown_model_names_are_refused_with_the_closest_registered_one():
    """Model names are checked against the model registry, not a list in the schema (a new model is
    one file), in train.models and in train.model_options."""
    assert (
        unknown_models({"models": ["ctnet", "wozniak2023"], "model_options": {"ctnet": {"width": 8}}}) == []
    )
    assert unknown_models({"models": ["ctnett"]}) == [
        "config `train.models`: unknown model `ctnett`; did you mean `ctnet`? (docs/models.md)"
    ]
    (problem,) = unknown_models({"models": ["ctnet"], "model_options": {"soundari": {"width": 8}}})
    assert problem.startswith(
        "config `train.model_options`: unknown model `soundari`; did you mean `soundari2022`?"
    )


def test_every_unknown_key_is_reported_and_valid_configs_have_none():
    assert len(unknown_keys({"train": {"epoch": 2, "lr": 0.1, "batchsize": 4}, "splitt": {}}, SCHEMA)) == 3
    for path in (REPO / "config.yaml", EXAMPLE, REPO / "tests" / "config" / "tiny.yaml"):
        assert unknown_keys(yaml.safe_load(path.read_text()), SCHEMA) == [], path
    # Free-form values (a model's constructor options) are not keys of the schema.
    assert unknown_keys({"train": {"model_options": {"ctnet": {"width": 8, "anything": 1}}}}, SCHEMA) == []


# --- data paths ----------------------------------------------------------------------------------------


def own_cohort(root: Path) -> dict:
    (root / "dicom").mkdir(parents=True)
    (root / "clinical.csv").write_text(CLINICAL)
    return {"synthetic": False, "dicom_dir": str(root / "dicom"), "clinical": str(root / "clinical.csv")}


def test_synthetic_cohort_implies_its_paths(tmp_path):
    assert resolve_data({"synthetic": True}, tmp_path) == {"synthetic": True, **SYNTHETIC_DATA}
    # The old style of config.yaml, spelling the synthetic paths out, still works.
    assert (
        resolve_data({"synthetic": True, **SYNTHETIC_DATA}, tmp_path)["readers"] == SYNTHETIC_DATA["readers"]
    )
    with pytest.raises(
        HTCTInputError, match=r"`data.clinical` is '/data/c.csv' but `data.synthetic` is true"
    ):
        resolve_data({"synthetic": True, "clinical": "/data/c.csv"}, tmp_path)


def test_own_cohort_has_no_readers_masks_or_truth_unless_given(tmp_path):
    data = own_cohort(tmp_path)
    resolved = resolve_data(data, tmp_path)
    assert resolved == data  # nothing filled in: no synthetic path sneaks in
    (tmp_path / "readers.csv").write_text("scan_id,reader,p_ht\n")
    assert resolve_data(data | {"readers": str(tmp_path / "readers.csv")}, tmp_path)["readers"]


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("readers", "resources/synthetic/readers.csv"),
        ("lesion_masks", "resources/synthetic/truth/masks"),
        ("truth", "./resources/synthetic/truth"),
        ("dicom_dir", "resources/../resources/synthetic/dicom"),
        ("clinical", "ABSOLUTE"),
    ],
)
def test_own_cohort_refuses_paths_into_the_synthetic_folder(tmp_path, key, path):
    data = own_cohort(tmp_path / "cohort")
    path = str(tmp_path / "resources/synthetic/clinical.csv") if path == "ABSOLUTE" else path
    with pytest.raises(HTCTInputError) as error:
        resolve_data(data | {key: path}, tmp_path)
    assert str(error.value).startswith(f"config `data.{key}` is {path!r}, inside resources/synthetic/")
    assert "`data.synthetic` is false" in str(error.value)


def test_own_cohort_needs_existing_dicom_folder_and_clinical_sheet(tmp_path):
    data = own_cohort(tmp_path)
    with pytest.raises(
        HTCTInputError, match=r"config `data.dicom_dir` is empty: with `data.synthetic: false`"
    ):
        resolve_data(data | {"dicom_dir": ""}, tmp_path)
    with pytest.raises(HTCTInputError, match=r"config `data.dicom_dir`: folder '/no/such/dicom' not found"):
        resolve_data(data | {"dicom_dir": "/no/such/dicom"}, tmp_path)
    with pytest.raises(HTCTInputError, match=r"config `data.readers`: file 'readers.csv' not found"):
        resolve_data(data | {"readers": "readers.csv"}, tmp_path)
    with pytest.raises(
        HTCTInputError, match=r"config `split.file` is 'resources/synthetic/split.tsv', inside"
    ):
        resolve_data(data, tmp_path, split_file="resources/synthetic/split.tsv")


# --- the example config for a site -----------------------------------------------------------------


def test_example_config_sets_every_key_a_site_sets():
    example = yaml.safe_load(EXAMPLE.read_text())
    assert example["data"]["synthetic"] is False
    for section, spec in SCHEMA["properties"].items():
        if section == "synthetic":  # the synthetic demo's own settings
            assert section not in example
            continue
        assert set(example[section]) == set(spec["properties"]), section
    jsonschema.Draft202012Validator(SCHEMA).validate(example)


# --- what the user sees: dry runs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("config_workflow"))


def dry_run(workflow: Path, config: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(path)]
    return subprocess.run(command, cwd=workflow, capture_output=True, text=True, timeout=300)


def assert_one_error_line(result: subprocess.CompletedProcess, expected: str, workflow: Path) -> None:
    assert result.returncode == 1
    assert result.stderr.splitlines() == [expected] or result.stderr.splitlines()[-1:] == [expected]
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "HTCT-ERROR" in line]
    assert errors == [expected]
    assert "Traceback" not in result.stdout + result.stderr and 'File "' not in result.stderr
    assert not (workflow / "resources" / "synthetic").exists() and not (workflow / "results").exists()


def test_typo_in_train_is_refused_before_any_job(workflow, tmp_path):
    result = dry_run(workflow, {"train": {"epoch": 2}}, tmp_path)
    assert_one_error_line(
        result,
        "HTCT-ERROR: config `train.epoch`: unknown key; did you mean `epochs`? (see schemas/config.schema.yaml)",
        workflow,
    )


def test_synthetic_path_in_an_own_cohort_is_refused_before_any_job(workflow, tmp_path):
    data = own_cohort(tmp_path / "cohort") | {"readers": "resources/synthetic/readers.csv"}
    result = dry_run(workflow, {"data": data}, tmp_path)
    assert_one_error_line(
        result,
        "HTCT-ERROR: config `data.readers` is 'resources/synthetic/readers.csv', inside resources/synthetic/ "
        "(the synthetic demo cohort), but `data.synthetic` is false: give your own cohort's file or leave "
        "it empty (see config/own_cohort.example.yaml)",
        workflow,
    )


def test_missing_dicom_folder_is_one_line_not_a_missing_input_exception(workflow, tmp_path):
    data = own_cohort(tmp_path / "cohort") | {"dicom_dir": str(tmp_path / "export")}
    result = dry_run(workflow, {"data": data}, tmp_path)
    assert "MissingInputException" not in result.stdout + result.stderr
    assert_one_error_line(
        result,
        f"HTCT-ERROR: config `data.dicom_dir`: folder '{tmp_path / 'export'}' not found (relative paths are "
        f"from {workflow.resolve()}); fix the path in your config file",
        workflow,
    )


def job_counts(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Snakemake's "Job stats" table of a dry run: rule -> number of jobs."""
    lines = result.stdout.splitlines()
    start = lines.index("Job stats:") + 3
    counts = {}
    for line in lines[start:]:
        if not line.strip():
            break
        rule, count = line.split()
        counts[rule] = int(count)
    return counts


def test_own_cohort_config_without_readers_plans_no_synthetic_job(workflow, tmp_path):
    """A site's config with only its DICOM folder and clinical sheet: the DAG runs no synthetic job,
    evaluates without readers and brings no lesion masks (config.yaml's demo paths are not inherited)."""
    result = dry_run(workflow, {"data": own_cohort(tmp_path / "cohort")}, tmp_path)
    assert result.returncode == 0, result.stderr
    jobs = job_counts(result)
    assert "synth_cohort" not in jobs and "lesion_masks" not in jobs
    assert {"convert_dicom", "evaluate", "figures", "attribution", "numbers"} <= set(jobs)
    assert "resources/synthetic" not in result.stdout
    evaluate = result.stdout[result.stdout.index("rule evaluate:") :].split("\n\n")[0]
    assert "readers" not in evaluate.split("output:")[0]
    # The demo, by contrast, generates its cohort first.
    demo = dry_run(workflow, {"data": {"synthetic": True}}, tmp_path)
    assert demo.returncode == 0 and {"synth_cohort", "lesion_masks"} <= set(job_counts(demo))


def test_config_yaml_shows_the_schema_defaults():
    """Defaults live in the schema only: every value config.yaml spells out equals the schema's default
    (config.yaml is the readable list of them; htct.config.schema_defaults gives them to the library)."""
    from htct.config import schema_defaults

    def leaves(mapping, prefix=""):
        for key, value in mapping.items():
            if isinstance(value, dict) and value:
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for section, values in config.items():
        defaults = dict(leaves(schema_defaults(section)))
        for key, value in leaves(values, f"{section}."):
            assert defaults[key.split(".", 1)[1]] == value, (
                f"config.yaml {key}: {value!r} is not the schema default"
            )

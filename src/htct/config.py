"""The workflow configuration: its defaults (the schema, the one place for them) and the checks
a JSON schema cannot express well (rules/common.smk).

The Snakemake workflow validates config.yaml against schemas/config.schema.yaml with
``set_default=True``; library callers outside the workflow (benchmarks, tests, notebooks) get the
same defaults from :func:`schema_defaults`, so no default is written twice.

Two traps of an own cohort are closed here, before any job runs: a misspelt key (`train.epoch`)
that the schema's `additionalProperties: false` would only report as "Additional properties are not
allowed", and data paths that silently come from the synthetic demo. Every problem is an
:class:`HTCTInputError`, one line naming the key and the fix.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import yaml

from htct.errors import HTCTInputError

SYNTHETIC_ROOT = Path("resources/synthetic")
"""Where rule synth_cohort writes the synthetic demo cohort (relative to the working directory)."""

SYNTHETIC_DATA = {
    "dicom_dir": "resources/synthetic/dicom",
    "clinical": "resources/synthetic/clinical.csv",
    "readers": "resources/synthetic/readers.csv",
    "lesion_masks": "resources/synthetic/truth/masks",
    "truth": "resources/synthetic/truth",
}
"""The `data:` paths that `data.synthetic: true` implies (rule synth_cohort's outputs)."""

OWN_COHORT_EXAMPLE = "config/own_cohort.example.yaml"

# data key -> (what it must be, required for an own cohort)
DATA_PATHS = {
    "dicom_dir": ("folder", True),
    "clinical": ("file", True),
    "readers": ("file", False),
    "lesion_masks": ("folder", False),
    "truth": ("folder", False),
}


def _unknown_keys(config: Mapping, schema: Mapping, where: str) -> Iterator[str]:
    properties = schema.get("properties") or {}
    for key, value in config.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key in properties:
            if isinstance(value, Mapping) and properties[key].get("type") == "object":
                yield from _unknown_keys(value, properties[key], dotted)
            continue
        if schema.get("additionalProperties", True) is not False:
            continue
        valid = sorted(properties)
        close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
        section = f"keys of {where}" if where else "top-level sections"
        hint = f"did you mean `{close[0]}`?" if close else f"{section}: {', '.join(valid)}"
        yield f"config `{dotted}`: unknown key; {hint} (see schemas/config.schema.yaml)"


def unknown_keys(config: Mapping, schema: Mapping) -> list[str]:
    """One message per config key that the schema does not know, with the closest valid key.

    Args:
        config: the merged configuration (config.yaml, --configfile, --config).
        schema: schemas/config.schema.yaml as loaded; objects with `additionalProperties: false`
            are checked, recursively.

    Returns:
        Messages such as "config `train.epoch`: unknown key; did you mean `epochs`? ...", in config
        order; empty when every key is known.

    Example:
        >>> schema = {"properties": {"train": {"type": "object", "properties": {"epochs": {}},
        ...           "additionalProperties": False}}, "additionalProperties": False}
        >>> unknown_keys({"train": {"epoch": 2}}, schema)[0].split(" (")[0]
        'config `train.epoch`: unknown key; did you mean `epochs`?'
    """
    return list(_unknown_keys(config, schema, ""))


def unknown_models(train: Mapping) -> list[str]:
    """One message per name in ``train.models``, ``train.model_options`` or ``train.per_model`` that is
    not a registered model.

    The names come from the model registry (its torch-free catalog where torch is not installed),
    with the closest registered name as a hint.
    """
    from htct.models.registry import known_model_names

    known = known_model_names()
    problems = []
    for where, names in (
        ("train.models", train.get("models", [])),
        ("train.model_options", train.get("model_options", {})),
        ("train.per_model", train.get("per_model", {})),
    ):
        for name in names:
            if name not in known:
                close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
                hint = f"did you mean `{close[0]}`?" if close else f"registered models: {', '.join(known)}"
                problems.append(f"config `{where}`: unknown model `{name}`; {hint} (docs/models.md)")
    return problems


def _inside_synthetic_folder(path: str, workdir: Path) -> bool:
    resolved = (workdir / path).resolve()
    return resolved.is_relative_to((workdir / SYNTHETIC_ROOT).resolve())


def resolve_data(data: Mapping, workdir: str | Path = ".", split_file: str = "") -> dict:
    """The `data:` section with every path set, or the first problem with it as an HTCTInputError.

    With `synthetic: true` the paths are the synthetic cohort's (:data:`SYNTHETIC_DATA`); a path set
    to anything else is refused, since it would be silently ignored or mixed with the demo's files.
    With `synthetic: false` `dicom_dir` and `clinical` are required, the optional sheets and folders
    stay empty unless given (no reader study, no lesion masks, no truth), nothing may point into
    resources/synthetic/, and every path given must exist.

    Args:
        data: config `data:` (after the schema's defaults).
        workdir: the workflow's working directory (paths are relative to it).
        split_file: config `split.file`, checked like the data paths.

    Returns:
        A copy of `data` with the implied synthetic paths filled in.

    Raises:
        HTCTInputError: a path is missing, does not exist, or contradicts `data.synthetic`.
    """
    workdir = Path(workdir)
    resolved = dict(data)
    if data.get("synthetic", True):
        for key, path in SYNTHETIC_DATA.items():
            given = str(data.get(key) or "")
            if given and Path(given) != Path(path):
                raise HTCTInputError(
                    f"config `data.{key}` is {given!r} but `data.synthetic` is true: the synthetic cohort "
                    f"is generated at {path!r}; set `data.synthetic: false` to use your own data "
                    f"(see {OWN_COHORT_EXAMPLE})"
                )
            resolved[key] = path
        return resolved
    paths = {key: str(data.get(key) or "") for key in DATA_PATHS}
    if split_file:
        paths["split.file"] = split_file
    for key, path in paths.items():
        name = key if "." in key else f"data.{key}"
        kind, required = DATA_PATHS.get(key, ("file", False))
        if not path:
            if required:
                raise HTCTInputError(
                    f"config `{name}` is empty: with `data.synthetic: false` give your cohort's {kind} "
                    f"(see {OWN_COHORT_EXAMPLE})"
                )
            continue
        if _inside_synthetic_folder(path, workdir):
            raise HTCTInputError(
                f"config `{name}` is {path!r}, inside {SYNTHETIC_ROOT}/ (the synthetic demo cohort), but "
                "`data.synthetic` is false: give your own cohort's "
                f"{kind}{'' if required else ' or leave it empty'} (see {OWN_COHORT_EXAMPLE})"
            )
        exists = (workdir / path).is_dir() if kind == "folder" else (workdir / path).is_file()
        if not exists:
            raise HTCTInputError(
                f"config `{name}`: {kind} {path!r} not found (relative paths are from {workdir.resolve()}); "
                f"fix the path in your config file"
            )
    return resolved


#: The schema, in the repository that holds this package (src/htct -> schemas/).
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


@cache
def _schema() -> dict:
    if not SCHEMA_PATH.is_file():
        raise FileNotFoundError(
            f"{SCHEMA_PATH} not found: htct takes its configuration defaults from the workflow's "
            "schemas/config.schema.yaml; use htct from a checkout of the ctnet-ht repository"
        )
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _is_object(schema: dict) -> bool:
    return schema.get("type") == "object" and "properties" in schema


def _defaults(schema: dict) -> object:
    """The value an empty instance gets: nested objects filled from their properties' defaults."""
    if not _is_object(schema):
        return copy.deepcopy(schema.get("default"))
    value = copy.deepcopy(schema.get("default", {}))
    for key, child in schema["properties"].items():
        if key in value:
            if _is_object(child) and isinstance(value[key], dict):
                value[key] = {**_defaults(child), **value[key]}
        elif "default" in child or _is_object(child):
            value[key] = _defaults(child)
    return value


def schema_defaults(section: str) -> dict:
    """The defaults of one top-level section of config.yaml (e.g. ``"train"``), from the schema.

    Example:
        >>> schema_defaults("train")["epochs"] > 0
        True
    """
    properties = _schema()["properties"]
    if section not in properties:
        raise KeyError(f"config.yaml has no section {section!r}; sections: {', '.join(properties)}")
    return _defaults(properties[section])

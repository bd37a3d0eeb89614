"""The workflow's configuration schema as the one place for defaults (schemas/config.schema.yaml).

The Snakemake workflow validates config.yaml against the schema with ``set_default=True``; library
callers outside the workflow (benchmarks, tests, notebooks) get the same defaults from
:func:`schema_defaults`, so no default is written twice.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import yaml

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

"""The paper's published numbers (resources/paper/zhang2026.yaml): loading and validation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from htct.errors import HTCTInputError
from htct.sheets import SCHEMA_DIR

COLUMNS = (
    "id",
    "section",
    "row",
    "column",
    "quantity",
    "value",
    "sd",
    "count",
    "ci",
    "ci_unit",
    "ci_decimals",
    "decimals",
    "unit",
    "approximate",
    "denominator",
    "status",
    "source",
    "quote",
    "inference",
    "placed_among",
    "average_of",
    "note",
    "compare",
)


@dataclass(frozen=True)
class PaperValues:
    """The published numbers.

    Attributes:
        paper: citation and where the text was read.
        entries: one row per printed number, columns :data:`COLUMNS` (``value`` NaN when missing,
            ``ci`` a ``[low, high]`` list or None, ``compare`` a dict or None).
    """

    paper: dict
    entries: pd.DataFrame

    def get(self, entry_id: str) -> pd.Series | None:
        """The entry with this id, or None."""
        rows = self.entries[self.entries["id"] == entry_id]
        return None if rows.empty else rows.iloc[0]

    def value(self, entry_id: str) -> float | None:
        """The printed value of an entry, None when the entry is absent or missing."""
        value = self._values().get(entry_id)
        return None if value is None or pd.isna(value) else float(value)

    def _values(self) -> dict[str, float]:
        # The audit looks values up by id many times; one dict instead of a DataFrame filter each.
        if "_by_id" not in self.__dict__:
            object.__setattr__(
                self, "_by_id", dict(zip(self.entries["id"], self.entries["value"], strict=True))
            )
        return self.__dict__["_by_id"]


def paper_values_from_dict(document: dict, origin: str = "paper values") -> PaperValues:
    """Validate a values document (schemas/paper_values.schema.yaml) and tabulate its entries.

    Args:
        document: the parsed YAML.
        origin: the file name for error messages.

    Returns:
        :class:`PaperValues`.

    Raises:
        HTCTInputError: naming the entry and key that break the schema, a duplicated id, a value
            without a source, or a missing entry that has a value.
    """
    schema = yaml.safe_load((SCHEMA_DIR / "paper_values.schema.yaml").read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(document))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "top level"
        raise HTCTInputError(f"{origin}: {where}: {error.message} (see schemas/paper_values.schema.yaml)")
    entries = document["entries"]
    seen: set[str] = set()
    ids = {entry["id"] for entry in entries}
    for entry in entries:
        if entry["id"] in seen:
            raise HTCTInputError(f"{origin}: entry id {entry['id']!r} appears twice; ids must be unique")
        seen.add(entry["id"])
        if entry["status"] == "missing" and entry["value"] is not None:
            raise HTCTInputError(
                f"{origin}: entry {entry['id']}: status missing but a value is given; set its status and source"
            )
        if entry["status"] != "missing" and (entry["value"] is None or not entry.get("source")):
            raise HTCTInputError(
                f"{origin}: entry {entry['id']}: a {entry['status']} entry needs a value and its source"
            )
        if entry["status"] == "inferred" and not entry.get("inference"):
            raise HTCTInputError(
                f"{origin}: entry {entry['id']}: an inferred entry needs its argument in 'inference'"
            )
        unknown = [other for other in entry.get("placed_among", []) if other not in ids]
        if unknown or (entry.get("placed_among") and entry["id"] not in entry["placed_among"]):
            raise HTCTInputError(
                f"{origin}: entry {entry['id']}: placed_among must list existing ids including its own "
                f"(unknown: {', '.join(unknown) or 'none'})"
            )
    table = pd.DataFrame([{column: entry.get(column) for column in COLUMNS} for entry in entries])
    table["value"] = pd.to_numeric(table["value"])
    table["sd"] = pd.to_numeric(table["sd"])
    table["count"] = pd.to_numeric(table["count"])
    table["approximate"] = table["approximate"].fillna(False).astype(bool)
    return PaperValues(paper=document["paper"], entries=table)


def load_paper_values(path: str | Path) -> PaperValues:
    """Read and validate the paper's values file.

    Args:
        path: e.g. resources/paper/zhang2026.yaml.

    Returns:
        :class:`PaperValues`.

    Raises:
        HTCTInputError: when the file is absent, not YAML, or breaks the schema.
    """
    path = Path(path)
    if not path.is_file():
        raise HTCTInputError(f"paper values file not found: {path} (config paper.values)")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise HTCTInputError(f"paper values file {path} is not valid YAML: {error}") from error
    return paper_values_from_dict(document, str(path))

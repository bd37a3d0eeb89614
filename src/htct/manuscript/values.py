"""Values of the run's outputs, each with the file, the place in it and the rule that made it.

Every number the reproduction report prints is a :class:`Value`: it carries the file it was read
from (a path under ``results/``), where in that file (the rows a selector picks and a column, or a
key path of a JSON file, or a count of rows), the rule that wrote the file, and how it is shown
(scale and decimals). The report links each number to its file; tests/test_manuscript.py re-reads
each one from its file with nothing but this description.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

CELL, COUNT, JSON, TEXT = "cell", "count", "json", "text"
ROW = "_row"  # selector key: the row's position (0-based) in a table without a key column
# selector key suffix: "reason^": the column's text is the value, or starts with it and a space (a
# kind of QC reason, e.g. "scout/localizer" for "scout/localizer (ImageType LOCALIZER)")
KIND = "^"
MISSING = {"", "NA", "nan", "NaN"}  # how the workflow's tables write an empty number


@dataclass(frozen=True)
class Value:
    """One value of an output file and how the report shows it.

    Attributes:
        value: the value as read (a number, or a string for kind ``text``).
        file: the file's path relative to the workflow's directory (``results/...``).
        rule: the rule that wrote the file.
        kind: ``cell`` (one cell of a table), ``count`` (rows a selector picks), ``json`` (a key path),
            ``text`` (a string cell, shown as it is).
        where: the selector: column -> value that pick exactly one row (cell, text) or the rows
            counted (count); empty for json.
        column: the column of a cell, or the dotted key path of a JSON (or YAML) value.
        scale: the factor applied before showing (100 for a fraction shown in %).
        decimals: decimals shown; negative: that many significant digits (p-values).
    """

    value: float | int | str
    file: str
    rule: str
    kind: str = CELL
    where: Mapping[str, str] = field(default_factory=dict)
    column: str = ""
    scale: float = 1.0
    decimals: int = 0

    @property
    def missing(self) -> bool:
        """True when the cell is empty (NaN): the report shows "n/a"."""
        return isinstance(self.value, float) and not math.isfinite(self.value)

    @property
    def text(self) -> str:
        """The value as the report shows it."""
        return show(self.value, self.kind, self.scale, self.decimals)

    def __str__(self) -> str:
        return self.text


def show(value: float | int | str, kind: str, scale: float = 1.0, decimals: int = 0) -> str:
    """How a value is printed: text as it is, numbers scaled and rounded, NaN as "n/a"."""
    if kind == TEXT or isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    number = float(value)
    if not math.isfinite(number):
        return "n/a"
    if decimals < 0:
        return f"{number * scale:.{-decimals}g}"
    return f"{number * scale:.{decimals}f}"


def _table(path: Path) -> pd.DataFrame:
    """A TSV or CSV output with every column read as text first (selectors compare strings)."""
    return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str, keep_default_na=False)


def select(table: pd.DataFrame, where: Mapping[str, str]) -> pd.DataFrame:
    """The rows of `table` whose columns equal the selector's values (compared as text); a key
    ``column^`` picks the rows whose text is the value or starts with the value and a space."""
    mask = pd.Series(True, index=table.index)
    for column, wanted in where.items():
        if column.endswith(KIND):
            text = table[column.removesuffix(KIND)].astype(str)
            mask &= (text == str(wanted)) | text.str.startswith(f"{wanted} ")
        else:
            mask &= table[column].astype(str) == str(wanted)
    return table[mask]


def read_value(root: Path, file: str, kind: str, where: Mapping[str, str], column: str) -> float | int | str:
    """Read one value back from an output file, as the description of a :class:`Value` says.

    Raises:
        KeyError: when the selector does not pick exactly one row (cell, text) or the key is absent.
    """
    path = root / file
    if kind == JSON:
        text = path.read_text(encoding="utf-8")
        node = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        for key in column.split("."):
            node = node[int(key)] if isinstance(node, list) else node[key]
        return node
    table = _table(path)
    rows = select(table.assign(_row=[str(i) for i in range(len(table))]), where)
    if kind == COUNT:
        return len(rows)
    if len(rows) != 1:
        raise KeyError(f"{file}: {dict(where)} picks {len(rows)} rows, not one")
    cell = rows.iloc[0][column]
    if kind == TEXT:
        return cell
    return float("nan") if cell in MISSING else float(cell)


class Outputs:
    """The run's output files, read through one object that makes a :class:`Value` of each read.

    Args:
        root: the workflow's directory (the one holding ``results/``).
        rules: output path -> the rule that writes it (from the Snakemake DAG, or the defaults of
            :data:`htct.manuscript.sources.RULES`).
    """

    def __init__(self, root: Path, rules: Mapping[str, str]) -> None:
        self.root = Path(root)
        self.rules = dict(rules)
        self._tables: dict[str, pd.DataFrame] = {}

    def exists(self, file: str) -> bool:
        """Whether this run made `file`: one of its rules writes it (a file left by an earlier run with
        another configuration is not read) and it is there. Optional stages may not have run."""
        return file in self.rules and (self.root / file).is_file()

    def table(self, file: str) -> pd.DataFrame:
        """The whole table as text (cached)."""
        if file not in self._tables:
            self._tables[file] = _table(self.root / file)
        return self._tables[file]

    def _value(self, value, file: str, kind: str, where, column: str, scale: float, decimals: int) -> Value:
        return Value(value, file, self.rules.get(file, "?"), kind, dict(where), column, scale, decimals)

    def cell(self, file: str, column: str, scale: float = 1.0, decimals: int = 0, **where: str) -> Value:
        """The number in `column` of the one row that `where` picks."""
        value = read_value(self.root, file, CELL, where, column)
        return self._value(value, file, CELL, where, column, scale, decimals)

    def text(self, file: str, column: str, **where: str) -> Value:
        """The string in `column` of the one row that `where` picks."""
        value = read_value(self.root, file, TEXT, where, column)
        return self._value(value, file, TEXT, where, column, 1.0, 0)

    def count(self, file: str, **where: str) -> Value:
        """The number of rows that `where` picks (every row when empty)."""
        value = read_value(self.root, file, COUNT, where, "")
        return self._value(value, file, COUNT, where, "", 1.0, 0)

    def json(self, file: str, key: str, scale: float = 1.0, decimals: int = 0) -> Value:
        """The value at the dotted `key` path of a JSON output."""
        value = read_value(self.root, file, JSON, {}, key)
        return self._value(value, file, JSON, {}, key, scale, decimals)

"""Where the reproduction report reads each of its numbers: the one place that names output files.

Each function takes an :class:`~htct.manuscript.values.Outputs` and returns what one part of the
report needs, every number a :class:`~htct.manuscript.values.Value`. A path or a column that
another stage renames is changed here only. An optional stage that the run did not make (the
repeats, the counterfactuals of an own cohort, the reader study) gives ``None``, and the report says
"not run" for it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from htct.manuscript.values import KIND, ROW, Outputs, Value

# A table with more columns than this is printed on a landscape page of the PDF.
WIDE_TABLE = 8

# Output files -> the rule that writes them (the report links each number to both).
PATIENTS = "results/qc/patients.tsv"
SERIES = "results/qc/series.tsv"
SCANS = "results/qc/scans.tsv"
PREPROCESS = "results/arrays/preprocess.json"
NUMBERS = "results/numbers.json"
METRICS = "results/evaluation/metrics.tsv"
TABLE1 = "results/tables/table1.csv"
TABLE2 = "results/tables/table2.csv"
TABLE3 = "results/tables/table3.csv"
TESTS = "results/tables/tests.csv"
COMPARISON = "results/paper/comparison.csv"
CLAIMS = "results/paper/claims.tsv"
MRMC = "results/paper/mrmc.tsv"
AUDIT = "results/paper/audit.tsv"
COUNTERFACTUALS = "results/evaluation/counterfactual_summary.tsv"
ATTRIBUTION = "results/attribution/verdicts.tsv"
# The repeats stage (rules/repeats.smk, scope "run": the default run's repeats): the spread of the test
# metrics and of the claims' differences over redrawn splits and training seeds.
REPEATS = "results/repeats/run/spread.csv"
# ... and how each repeat's training converged, beside the synthetic oracle's validation AUC.
CONVERGENCE = "results/repeats/run/convergence.tsv"

# The comparison's rows (column Section) shown beside each of the report's tables; the rest together.
COMPARISON_PARTS = {"baseline": "Table 1", "clinicians": "Table 2", "compared": "Table 3"}
# Tables 1-3 in the paper's layout (rule paper_tables): the tidy cells, and the page with the same table.
LAYOUTS = {part: f"results/paper/table{n}_layout.tsv" for n, part in enumerate(COMPARISON_PARTS, start=1)}
LAYOUT_PAGES = {part: file.replace(".tsv", ".html") for part, file in LAYOUTS.items()}
# The clinical models (rules/clinical.smk): the fusion's choice, the image and clinical information on
# the test part, the claims about what each adds, the interaction with treatment, results by treatment.
FUSION_SELECTION = "results/models/ctnet_clinical/selection.tsv"
IMAGE_CLINICAL = "results/tables/image_clinical.csv"
IMAGE_CLINICAL_CLAIMS = "results/tables/image_clinical_claims.csv"
TREATMENT_INTERACTION = "results/tables/treatment_interaction.csv"
TREATMENT_PAGE = "results/tables/treatment.html"

RULES = {
    PATIENTS: "patient_qc",
    SERIES: "convert_dicom",
    SCANS: "convert_dicom",
    PREPROCESS: "preprocess",
    NUMBERS: "numbers",
    METRICS: "evaluate",
    TABLE1: "table1",
    TABLE2: "evaluate",
    TABLE3: "evaluate",
    TESTS: "evaluate",
    COMPARISON: "paper_comparison",
    CLAIMS: "paper_comparison",
    MRMC: "paper_comparison",
    AUDIT: "paper_audit",
    COUNTERFACTUALS: "counterfactuals",
    ATTRIBUTION: "attribution_summary",
    REPEATS: "repeats_summary",
    CONVERGENCE: "repeats_summary",
    **dict.fromkeys(LAYOUTS.values(), "paper_tables"),
    **dict.fromkeys(LAYOUT_PAGES.values(), "paper_tables"),
    FUSION_SELECTION: "fuse_clinical",
    IMAGE_CLINICAL: "image_clinical",
    IMAGE_CLINICAL_CLAIMS: "image_clinical",
    TREATMENT_INTERACTION: "image_clinical",
    TREATMENT_PAGE: "image_clinical",
}


def model_files(model: str, k_folds: int = 0) -> dict[str, Any]:
    """A trained model's outputs: its threshold (rule train, or merge_folds after a k-fold training) and
    the epochs table of its training, or of each fold's (rule train_fold)."""
    folder = f"results/models/{model}"
    folds = [f"{folder}/fold{k}" for k in range(k_folds)] if k_folds >= 2 else [folder]
    return {"threshold": f"{folder}/threshold.json", "epochs": [f"{fold}/epochs.tsv" for fold in folds]}


def rules_for(models: Sequence[str], k_folds: int = 0) -> dict[str, str]:
    """:data:`RULES` plus every model's files, for a run whose rules are not known from its DAG."""
    rules = dict(RULES)
    for model in models:
        files = model_files(model, k_folds)
        rules[files["threshold"]] = "train" if k_folds < 2 else "merge_folds"
        rules |= dict.fromkeys(files["epochs"], "train" if k_folds < 2 else "train_fold")
    return rules


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def reason_kind(reason: str) -> str:
    """The kind of a QC reason: its words before the details that name one series (a bracket, a
    number), e.g. "duplicate series in study" for "duplicate series in study (kept series 0b35...:
    ...)", "gantry tilt" for "gantry tilt 18.5 deg (...)"."""
    kind = re.split(r" \(| (?=[-+]?\d)|: ", reason, maxsplit=1)[0].strip()
    return kind or reason


def exclusion_kinds(out: Outputs) -> list[tuple[str, Value]]:
    """The excluded series grouped by the kind of their reason, most frequent first: (kind, count).
    The count is a Value whose selector picks the rows of that kind (``reason^``)."""
    series = out.table(SERIES)
    kinds = Counter(reason_kind(r) for r in series.loc[series["status"] == "excluded", "reason"])
    ordered = sorted(kinds, key=lambda kind: (-kinds[kind], kind))
    grouped = [(kind, out.count(SERIES, status="excluded", **{"reason" + KIND: kind})) for kind in ordered]
    # a kind that is the start of another kind's text would count that kind's series too
    assert sum(count.value for _, count in grouped) == kinds.total(), "QC reason kinds overlap"
    return grouped


def cohort(out: Outputs) -> dict[str, Any]:
    """Conversion and QC counts: patients of the clinical sheet, series found, kept and excluded, the
    exclusions grouped by the kind of their reason (the per-series list is the QC table's)."""
    patients = out.table(PATIENTS)
    patient_reasons = sorted(set(patients.loc[patients["status"] != "included", "reason"]))
    return {
        "patients_listed": out.count(PATIENTS),
        "patients_included": out.count(PATIENTS, status="included"),
        "patients_excluded": [
            (
                out.text(PATIENTS, "reason", **_first(patients, "reason", r)),
                out.count(PATIENTS, reason=r),
            )
            for r in patient_reasons
        ],
        "series_found": out.count(SERIES),
        "series_kept": out.count(SERIES, status="kept"),
        "series_excluded": out.count(SERIES, status="excluded"),
        "exclusions": exclusion_kinds(out),
        "series_page": SERIES,
        "scans_kept": out.count(SCANS),
        "numbers": numbers_cohort(out),
    }


def _is_p_value(column: str) -> bool:
    """A column of p-values (shown with three significant digits, not three decimals)."""
    return column == "p" or column.endswith(" p") or column.startswith("p_")


def _first(table, column: str, value: str) -> dict[str, str]:
    """The selector of the first row whose `column` is `value` (to cite a value once)."""
    return {ROW: str(int((table[column] == value).to_numpy().argmax()))}


def numbers_cohort(out: Outputs) -> dict[str, Value]:
    """The cohort's counts, age and sex (rule numbers)."""
    keys = ("patients", "patients_ht", "patients_non_ht", "scans", "scans_ht", "scans_non_ht")
    values = {key: out.json(NUMBERS, f"cohort.{key}") for key in keys}
    values["age_mean"] = out.json(NUMBERS, "cohort.age_mean", decimals=1)
    values["age_sd"] = out.json(NUMBERS, "cohort.age_sd", decimals=1)
    values["male_percent"] = out.json(NUMBERS, "cohort.male_percent", decimals=1)
    return values


def split(out: Outputs) -> list[dict[str, Value | str]]:
    """Patients, scans and HT scans of each part of the split."""
    parts = []
    for part in ("train", "val", "test"):
        parts.append(
            {"part": part}
            | {key: out.json(NUMBERS, f"split.{part}.{key}") for key in ("patients", "scans", "scans_ht")}
        )
    return parts


def preprocessing(out: Outputs) -> list[tuple[str, Value]]:
    """Every scalar parameter of the preprocessing (its key path, its value)."""
    import json

    leaves: list[tuple[str, Value]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{path}.{index}")
        elif node is not None:
            decimals = 0 if isinstance(node, int | bool | str) or float(node).is_integer() else 2
            leaves.append((path, out.json(PREPROCESS, path, decimals=decimals)))

    walk(json.loads((out.root / PREPROCESS).read_text(encoding="utf-8")), "")
    return leaves


def models(out: Outputs, names: Sequence[str], k_folds: int = 0) -> list[dict[str, Any]]:
    """Each model's display name, epochs run (per fold after a k-fold training), the epoch kept
    (the selected one, ``best_epoch``) and threshold."""
    rows = []
    for name in names:
        files = model_files(name, k_folds)
        rows.append(
            {
                "label": model_label(out, name),
                "epochs": [out.count(file) for file in files["epochs"] if out.exists(file)],
                "threshold": (
                    out.json(files["threshold"], "threshold", decimals=3)
                    if out.exists(files["threshold"])
                    else None
                ),
                "kept": (
                    out.json(files["threshold"], "best_epoch")
                    if out.exists(files["threshold"]) and k_folds < 2
                    else None
                ),
            }
        )
    return rows


def generic_table(
    out: Outputs,
    file: str,
    decimals: int = -3,
    columns: Sequence[str] | None = None,
    rows_where: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any] | None:
    """Any table of the run, every cell a Value (numbers as numbers, the rest as text); None if absent.

    Args:
        out: the run's outputs.
        file: the table's path.
        decimals: decimals of non-integer numbers (negative: significant digits).
        columns: the columns shown (default all but the synthetic flag).
        rows_where: column -> values: only the rows whose column holds one of them.
    """
    if not out.exists(file):
        return None
    table = out.table(file)
    # the synthetic flag of every row is stated once, at the top of the report
    columns = [c for c in (columns or table.columns) if c in table.columns and c != "synthetic"]
    rows = []
    for position in range(len(table)):
        if rows_where and not all(table.iloc[position][c] in v for c, v in rows_where.items()):
            continue
        row = []
        for column in columns:
            cell = table.iloc[position][column]
            where = {ROW: str(position)}
            if _number(cell) and cell not in ("nan", "NaN"):
                places = 0 if cell.lstrip("-").isdigit() else (-3 if _is_p_value(column) else decimals)
                row.append(out.cell(file, column, decimals=places, **where))
            else:
                row.append(out.text(file, column, **where))
        rows.append(row)
    return {"file": file, "columns": columns, "rows": rows, "wide": len(columns) > WIDE_TABLE}


def model_label(out: Outputs, model: str) -> Value:
    """A model's display name, as the run's numbers file gives it (e.g. "CTNet")."""
    return out.json(NUMBERS, f"models.{model}.label")


def test_metric(out: Outputs, model: str, metric: str) -> dict[str, Value]:
    """A model's test-set metric with its bootstrap interval, in % with one decimal."""
    return {
        k: out.json(NUMBERS, f"models.{model}.{metric}.{k}", scale=100, decimals=1)
        for k in ("value", "low", "high")
    }


def readers(out: Outputs) -> dict[str, Any] | None:
    """The reader study: each metric's range over the clinicians and their average; None without one."""
    numbers = out.json(NUMBERS, "readers").value
    if not numbers:
        return None
    metrics = {}
    for metric in numbers:
        base = f"readers.{metric}"
        metrics[metric] = {
            "min": out.json(NUMBERS, f"{base}.min", scale=100, decimals=1),
            "max": out.json(NUMBERS, f"{base}.max", scale=100, decimals=1),
            "average": {
                k: out.json(NUMBERS, f"{base}.average_with_ci.{k}", scale=100, decimals=1)
                for k in ("value", "low", "high")
            },
        }
    agreement = {key: out.json(NUMBERS, f"agreement.{key}", decimals=2) for key in ("fleiss_kappa_readers",)}
    return {"metrics": metrics, "agreement": agreement}


def claims(out: Outputs) -> list[dict[str, Any]] | None:
    """The paper's claims with the run's verdicts: differences in percentage points, p-values; any
    column a later stage adds (e.g. in how many repeats a claim holds) comes along as text."""
    if not out.exists(CLAIMS):
        return None
    table = out.table(CLAIMS)
    known = {"claim_id", "claim", "paper_says", "test", "verdict", "detail", "estimate", "low", "high", "p"}
    rows = []
    for position in range(len(table)):
        where = {ROW: str(position)}
        row: dict[str, Any] = {
            key: out.text(CLAIMS, key, **where)
            for key in ("claim", "paper_says", "test", "verdict", "detail")
        }
        for key in ("estimate", "low", "high"):
            row[key] = out.cell(CLAIMS, key, scale=100, decimals=1, **where)
        row["p"] = out.cell(CLAIMS, "p", decimals=-3, **where)
        row["more"] = [
            (column, out.text(CLAIMS, column, **where)) for column in table.columns if column not in known
        ]
        rows.append(row)
    return rows


def audit(out: Outputs) -> dict[str, Any] | None:
    """The audit of the paper's own numbers: checks per result, and the findings not consistent."""
    if not out.exists(AUDIT):
        return None
    table = out.table(AUDIT)
    results = list(dict.fromkeys(table["result"]))
    return {
        "checks": out.count(AUDIT),
        "by_result": [
            (out.text(AUDIT, "result", **_first(table, "result", r)), out.count(AUDIT, result=r))
            for r in results
        ],
        "inconsistent": [
            {key: out.text(AUDIT, key, **{ROW: str(position)}) for key in ("check", "subject", "detail")}
            for position in range(len(table))
            if table.iloc[position]["result"] == "inconsistent"
        ],
    }


def interval_table(
    out: Outputs,
    file: str,
    row: str = "Rater",
    column: str = "Metric",
    decimals: int = 1,
    column_decimals: Mapping[str, int] | None = None,
) -> dict[str, Any] | None:
    """A tidy table of estimates with intervals (tables 2 and 3) laid out as the paper prints it:
    one row per rater, one column per metric, each cell estimate (lower–upper); `column_decimals`
    overrides the decimals of some metrics (e.g. a calibration slope, not a percentage)."""
    column_decimals = column_decimals or {}
    if not out.exists(file):
        return None
    table = out.table(file)
    rows = list(dict.fromkeys(table[row]))
    columns = list(dict.fromkeys(table[column]))
    cells = []
    for name in rows:
        line = []
        for metric in columns:
            where = {row: name, column: metric}
            if len(table[(table[row] == name) & (table[column] == metric)]) != 1:
                line.append(None)
                continue
            places = column_decimals.get(metric, decimals)
            line.append(
                {k: out.cell(file, k, decimals=places, **where) for k in ("estimate", "lower", "upper")}
            )
        first = out.text(file, row, **_first(table, row, name))
        cells.append((first, line))
    headers = [out.text(file, column, **_first(table, column, metric)) for metric in columns]
    return {"file": file, "columns": headers, "rows": cells}


def table1(out: Outputs) -> dict[str, Any] | None:
    """Table 1 as the paper prints it: one row per characteristic (and level), one column per group;
    each cell n (%) or mean ± SD, every number a Value of the tidy CSV."""
    if not out.exists(TABLE1):
        return None
    table = out.table(TABLE1)
    groups = list(dict.fromkeys(table["group"]))
    rows = []
    for characteristic, level in dict.fromkeys(zip(table["characteristic"], table["level"], strict=True)):
        picked = table[(table["characteristic"] == characteristic) & (table["level"] == level)]
        first = str(int(picked.index[0]))
        cells = []
        for group in groups:
            where = {"characteristic": characteristic, "level": level, "group": group}
            row = picked[picked["group"] == group]
            if len(row) != 1:
                cells.append(None)
                continue
            decimals = {"count": 0, "percent": 1, "mean": 1, "sd": 1}
            cells.append(
                {
                    k: out.cell(TABLE1, k, decimals=d, **where)
                    for k, d in decimals.items()
                    if row.iloc[0][k] != ""
                }
            )
        rows.append(
            {
                "characteristic": out.text(TABLE1, "characteristic", **{ROW: first}),
                "level": out.text(TABLE1, "level", **{ROW: first}),
                "cells": cells,
            }
        )
    headers = [
        {
            "group": out.text(TABLE1, "group", **_first(table, "group", g)),
            "n": out.cell(TABLE1, "group_n", **_first(table, "group", g)),
        }
        for g in groups
    ]
    return {"file": TABLE1, "groups": headers, "rows": rows}


def comparison(out: Outputs) -> dict[str, Any]:
    """The paper beside the run, split by the comparison's Section: the rows of each of the paper's
    tables (shown under the report's table) and every other row ("text"); None parts if absent."""
    if not out.exists(COMPARISON):
        return dict.fromkeys([*COMPARISON_PARTS, "text"])
    sections = set(out.table(COMPARISON)["Section"])
    parts = {
        part: generic_table(out, COMPARISON, rows_where={"Section": [s]})
        for part, s in COMPARISON_PARTS.items()
    }
    rest = sorted(sections - set(COMPARISON_PARTS.values()))
    return parts | {"text": generic_table(out, COMPARISON, rows_where={"Section": rest})}


def paper_layout(out: Outputs, part: str) -> dict[str, Any] | None:
    """One of the paper's tables in its own layout (rule paper_tables): its columns, and per row its
    label and cells, each the paper's value as printed (with its footnote mark) above this run's; the
    footnotes; the page of the same table. None when the run has no such table."""
    file = LAYOUTS[part]
    if not out.exists(file):
        return None
    table = out.table(file)
    columns = list(dict.fromkeys(table["column"]))
    rows = []
    for name in dict.fromkeys(table["row"]):
        line = []
        for column in columns:
            picked = table.index[(table["row"] == name) & (table["column"] == column)]
            if len(picked) != 1:
                line.append(None)
                continue
            where = {ROW: str(int(picked[0]))}
            cell = {key: out.text(file, key, **where) for key in ("run", "paper", "note")}
            cell["oracle"] = table.loc[picked[0], "status"] == "oracle"
            line.append(cell)
        rows.append((out.text(file, "row", **_first(table, "row", name)), line))
    marks = [m for m in dict.fromkeys(table["note"]) if m]
    return {
        "file": file,
        "page": LAYOUT_PAGES[part] if out.exists(LAYOUT_PAGES[part]) else file,
        "columns": [out.text(file, "column", **_first(table, "column", c)) for c in columns],
        "rows": rows,
        "footnotes": [
            (
                out.text(file, "note", **_first(table, "note", m)),
                out.text(file, "footnote", **_first(table, "note", m)),
            )
            for m in marks
        ],
    }


def clinical(out: Outputs) -> dict[str, Any] | None:
    """The clinical models: the late fusion's choice on the validation scans, the test metrics of the
    clinical model, CTNet, the fusion and the ceilings, the claims about what the image and the clinical
    variables add, and the interaction with treatment. None when the run has no clinical stage."""
    if not out.exists(IMAGE_CLINICAL):
        return None
    return {
        "selection": generic_table(out, FUSION_SELECTION),
        "metrics": interval_table(
            out, IMAGE_CLINICAL, column_decimals={"Calibration slope": 2, "Calibration intercept": 2}
        ),
        "claims": generic_table(
            out,
            IMAGE_CLINICAL_CLAIMS,
            columns=["claim", "test", "estimate", "low", "high", "p", "verdict"],
        ),
        "interaction": generic_table(out, TREATMENT_INTERACTION),
        "treatment_page": TREATMENT_PAGE if out.exists(TREATMENT_PAGE) else None,
    }

"""Every number the paper's text quotes, computed from the workflow's outputs (numbers.json/.md).

A manuscript can include these instead of retyping them: cohort and scan counts, split counts,
age, the model's headline metrics with CIs, the readers' mean and range per metric, and the
agreement ranges among readers and between readers and the model.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from htct import SYNTHETIC_NOTICE
from htct.models.registry import display_name
from htct.report.html import html_document, notice_html
from htct.tables.reader_study import AVERAGE_READER
from htct.tables.write import MISSING


def _range(values: np.ndarray) -> dict[str, float]:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"min": float("nan"), "max": float("nan"), "mean": float("nan")}
    return {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean())}


def _off_diagonal(matrix: pd.DataFrame, rows: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    block = matrix.loc[list(rows), list(columns)].to_numpy(dtype=float)
    if list(rows) == list(columns):
        return block[np.triu_indices_from(block, k=1)]
    return block.ravel()


def paper_numbers(
    clinical: pd.DataFrame,
    split_scans: pd.DataFrame,
    metrics: pd.DataFrame,
    agreement: pd.DataFrame,
    fleiss_kappa: float,
    models: Sequence[str],
    readers: Sequence[str],
    synthetic: bool,
) -> dict[str, Any]:
    """Collect the numbers of the text.

    Args:
        clinical: the clinical sheet (patient_id, label, age, ...).
        split_scans: every kept scan with its patient, part (train/val/test).
        metrics: long interval table (rater, metric, value, low, high), fractions.
        agreement: numeric stacked matrices, outer index percent_agreement / cohen_kappa.
        fleiss_kappa: Fleiss' kappa of the readers.
        models: model names (the first is the reference model).
        readers: reader names.
        synthetic: whether the data are the synthetic cohort.

    Returns:
        A JSON-serialisable dict.
    """
    patients = clinical[clinical["patient_id"].isin(split_scans["patient_id"])]
    scans = split_scans.merge(
        clinical[["patient_id", "label"]], on="patient_id", how="left", suffixes=("_scan", "")
    )
    numbers: dict[str, Any] = {
        "synthetic": synthetic,
        "notice": SYNTHETIC_NOTICE if synthetic else "",
        "cohort": {
            "patients": len(patients),
            "patients_ht": int(patients["label"].sum()),
            "patients_non_ht": int((patients["label"] == 0).sum()),
            "scans": len(scans),
            "scans_ht": int(scans["label"].sum()),
            "scans_non_ht": int((scans["label"] == 0).sum()),
            "age_mean": float(patients["age"].mean()),
            "age_sd": float(patients["age"].std(ddof=1)),
            "male_percent": float(100 * (patients["sex"] == "M").mean()),
        },
        "split": {},
        "models": {},
        "readers": {},
        "agreement": {},
    }
    for part in ("train", "val", "test"):
        rows = scans[scans["part"] == part]
        numbers["split"][part] = {
            "patients": int(rows["patient_id"].nunique()),
            "scans": len(rows),
            "scans_ht": int(rows["label"].sum()),
        }
    cells = metrics.set_index(["rater", "metric"])
    for model in models:
        numbers["models"][model] = {
            "label": display_name(model),
            **{
                metric: {k: float(cells.loc[(model, metric), k]) for k in ("value", "low", "high")}
                for metric in metrics["metric"].unique()
            },
        }
    if readers:
        for metric in metrics["metric"].unique():
            values = [cells.loc[(reader, metric), "value"] for reader in readers]
            average = {k: float(cells.loc[(AVERAGE_READER, metric), k]) for k in ("value", "low", "high")}
            numbers["readers"][metric] = _range(np.array(values)) | {"average_with_ci": average}
        percent = agreement.loc["percent_agreement"]
        kappa = agreement.loc["cohen_kappa"]
        model = models[0]
        numbers["agreement"] = {
            "percent_among_readers": _range(_off_diagonal(percent, readers, readers)),
            "percent_readers_vs_model": _range(_off_diagonal(percent, [model], readers)),
            "kappa_among_readers": _range(_off_diagonal(kappa, readers, readers)),
            "kappa_readers_vs_model": _range(_off_diagonal(kappa, [model], readers)),
            "fleiss_kappa_readers": float(fleiss_kappa),
        }
    return numbers


def numbers_sentences(numbers: dict[str, Any]) -> list[str]:
    """The numbers as short sentences of a results section (percent with one decimal)."""
    c = numbers["cohort"]
    lines = [
        f"Cohort: {c['patients']} patients ({c['patients_ht']} with HT, {c['patients_non_ht']} without), "
        f"{c['scans']} scans ({c['scans_ht']} HT / {c['scans_non_ht']} non-HT); "
        f"age {c['age_mean']:.1f} ± {c['age_sd']:.1f} years; {c['male_percent']:.1f}% male."
    ]
    for part, s in numbers["split"].items():
        lines.append(f"{part}: {s['patients']} patients, {s['scans']} scans ({s['scans_ht']} HT).")
    for m in numbers["models"].values():
        parts = [
            f"{METRIC_LABELS.get(metric, metric)} {_with_ci(v)}"
            for metric, v in m.items()
            if isinstance(v, dict)
        ]
        lines.append(f"{m['label']} (test): " + ", ".join(parts) + ".")
    for metric, r in numbers["readers"].items():
        lines.append(
            f"Readers' {METRIC_LABELS.get(metric, metric)}: mean {_percent(r['mean'])}, "
            f"range {_percent(r['min'], '')}–{_percent(r['max'])}."
        )
    if numbers["agreement"]:
        a = numbers["agreement"]
        lines.append(
            f"Agreement among readers {a['percent_among_readers']['min']:.2f}–{a['percent_among_readers']['max']:.2f}"
            f" (kappa {a['kappa_among_readers']['min']:.2f}–{a['kappa_among_readers']['max']:.2f}); readers vs model "
            f"{a['percent_readers_vs_model']['min']:.2f}–{a['percent_readers_vs_model']['max']:.2f}; "
            f"Fleiss' kappa of the readers {a['fleiss_kappa_readers']:.2f}."
        )
    return lines


def numbers_markdown(numbers: dict[str, Any]) -> str:
    """The numbers as a Markdown list under a heading (and the notice for synthetic data)."""
    lines = ["# Numbers of the text", ""]
    if numbers["synthetic"]:
        lines += [f"> {numbers['notice']}", ""]
    lines += [f"- {sentence}" for sentence in numbers_sentences(numbers)]
    return "\n".join(lines) + "\n"


def numbers_html(numbers: dict[str, Any]) -> str:
    """The numbers as an HTML page of the report (the same sentences as the Markdown)."""
    items = "".join(f"<li>{html.escape(sentence)}</li>\n" for sentence in numbers_sentences(numbers))
    body = f"<h1>Numbers of the text</h1>\n{notice_html(numbers['synthetic'])}<ul>\n{items}</ul>\n"
    return html_document("Numbers of the text", body)


METRIC_LABELS = {"ppv": "PPV", "npv": "NPV", "f1": "F1", "macro_f1": "macro-F1", "auc": "AUC"}
"""How the metric keys read in the text (others as they are: accuracy, sensitivity, ...)."""


def _percent(value: float, unit: str = "%") -> str:
    return MISSING if value is None or np.isnan(value) else f"{100 * value:.1f}{unit}"


def _with_ci(v: dict[str, float]) -> str:
    """ "61.5% (26.6–90.1)", or the estimate alone where the interval is undefined, "–" if missing."""
    if v["value"] is None or np.isnan(v["value"]):
        return MISSING
    if any(v[k] is None or np.isnan(v[k]) for k in ("low", "high")):
        return _percent(v["value"])
    return f"{_percent(v['value'])} ({_percent(v['low'], '')}–{_percent(v['high'], '')})"


def write_numbers(
    numbers: dict[str, Any], json_path: str, md_path: str, html_path: str | None = None
) -> None:
    """Write numbers.json (NaN as null), numbers.md and, when given, numbers.html."""
    text = json.dumps(numbers, indent=2, allow_nan=True).replace("NaN", "null")
    with open(json_path, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    with open(md_path, "w", encoding="utf-8") as handle:
        handle.write(numbers_markdown(numbers))
    if html_path is not None:
        with open(html_path, "w", encoding="utf-8") as handle:
            handle.write(numbers_html(numbers))

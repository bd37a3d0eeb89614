"""The spread of a run's numbers over repeats: training seeds x patient-level resampled splits.

One repeat (``splitI_seedJ``) draws the split with ``split.seed + I`` (new test patients; the readers,
who read every scan, and the oracle are re-scored on that split's test scans) and trains with
``train.seed + J``. The headline tables keep the paper's protocol (the configured split and seed);
this module says where they sit in the spread, and in how many repeats each claim holds.

The leakage sensitivity analysis runs the same repeats with a split by image (a patient's scans on
both sides, as the paper's counts suggest; :func:`htct.split.make_image_split`) and reports what the
leak adds to each metric, repeat by repeat (same split seed, same training seed).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from htct.evaluate.metrics import auc
from htct.evaluate.study import evaluate_study
from htct.names import display_name
from htct.paper.claims import DOES_NOT_HOLD, HOLDS, UNDECIDED, paper_claims
from htct.paper.comparison import oracle_metrics, read_truth_scans
from htct.paper.values import PaperValues
from htct.repeats import SPLIT_KINDS
from htct.sheets import load_readers
from htct.split import make_image_split, make_split, scans_by_part

IDS = {"scan_id": str, "patient_id": str}

#: Table 2/3 metrics whose spread is reported.
SPREAD_METRICS = ("auc", "accuracy", "sensitivity", "specificity", "ppv", "f1")
#: Metrics whose inflation by the image-level split is reported (the paper's headline ones).
LEAKAGE_METRICS = ("auc", "sensitivity", "f1", "accuracy")
READER_AVERAGE = "Average (clinician)"
METRIC_NAMES = {"auc": "AUC", "accuracy": "accuracy", "sensitivity": "sensitivity", "specificity": "specificity",
                "ppv": "PPV", "f1": "F1"}  # fmt: skip
ORACLE = "oracle"
#: Claims a repeat cannot decide: the attention claim (no attribution stage per repeat), and the
#: claims against the baselines when repeats.models leaves them out (paper_claims' detail). They are
#: "not repeated" rather than "undecided" in every repeat.
NOT_REPEATED_CLAIMS = ("attention_on_infarct",)
NOT_REPEATED_DETAILS = ("no baseline models",)
#: The spread interval: 2.5th and 97.5th percentiles of the repeats.
PERCENTILES = (2.5, 97.5)


def repeat_split(
    clinical: pd.DataFrame,
    scans: pd.DataFrame,
    kind: str,
    seed: int,
    test_fraction: float,
    val_fraction: float,
) -> pd.DataFrame:
    """One repeat's split: patient-level (as the workflow's, :func:`make_split`) or by image.

    Args:
        clinical: the clinical sheet (patient_id, label).
        scans: the kept scans (scan_id, patient_id).
        kind: ``patient`` or ``image``.
        seed: the repeat's split seed.
        test_fraction: share of patients (or scans) in the test part.
        val_fraction: share of the rest held out for validation.
    """
    if kind == "patient":
        return make_split(clinical, scans, seed, test_fraction, val_fraction)
    if kind == "image":
        labelled = scans[["scan_id", "patient_id"]].merge(
            clinical[["patient_id", "label"]], on="patient_id", how="left", validate="m:1"
        )
        return make_image_split(labelled, seed, test_fraction, val_fraction)
    raise ValueError(f"split kind must be one of {SPLIT_KINDS}, not {kind!r}")


def scans_of_split(split: pd.DataFrame, scans: pd.DataFrame) -> pd.DataFrame:
    """Every kept scan with its part: through its patient, or its own for an image-level split."""
    if "scan_id" not in split.columns:
        return scans_by_part(split, scans)
    return scans.merge(split[["scan_id", "part", "fold"]], on="scan_id", how="left", validate="1:1")


def evaluate_repeat(
    predictions: Sequence[str],
    models: Sequence[str],
    readers: str | None,
    scans: str,
    truth_dir: str | None,
    evaluate: Mapping,
    paper: Mapping,
    repeat: str,
    kind: str,
    output: object,
) -> None:
    """One repeat's test-set evaluation, as the headline run's (same bootstrap, tests and alpha).

    Writes ``output.metrics`` (the evaluation's long metrics, the oracle's rows added for a
    synthetic cohort), ``output.test_scans`` and ``output.claims`` (:func:`paper_claims`; the
    claims a repeat cannot decide, :data:`NOT_REPEATED_CLAIMS` and :data:`NOT_REPEATED_DETAILS`, left out), each tagged with repeat and split_kind.

    Args:
        predictions: one prediction table per model, in the order of ``models``.
        models: the repeat's models, CTNet first.
        readers: the readers sheet (every scan), or None.
        scans: the repeat's scans.tsv (scan_id, patient_id, part).
        truth_dir: the synthetic cohort's truth folder, or None.
        evaluate: config ``evaluate:``.
        paper: config ``paper:``.
        repeat: the repeat's name.
        kind: ``patient`` or ``image``.
        output: the rule's outputs (metrics, test_scans, claims).
    """
    tables = {m: pd.read_csv(p, sep="\t", dtype=IDS) for m, p in zip(models, predictions, strict=True)}
    scan_parts = pd.read_csv(scans, sep="\t", dtype=IDS)
    test_ids = scan_parts.loc[scan_parts["part"] == "test", "scan_id"]
    sheet = load_readers(readers, test_ids) if readers else None
    n_bootstrap, seed = evaluate["n_bootstrap"], evaluate["seed"]
    out = evaluate_study(
        tables, sheet, n_bootstrap, seed, evaluate["ci_method"], evaluate["reader_threshold"]
    )
    metrics = out["metrics"]
    truth = read_truth_scans(truth_dir)
    if truth is not None:
        oracle = oracle_metrics(
            out["scans"],
            truth,
            n_bootstrap,
            seed,
            paper["oracle_threshold"],
        )
        metrics = pd.concat([metrics, oracle], ignore_index=True)
    claims, _ = paper_claims(out["scans"], list(models), n_bootstrap, seed, paper["alpha"])
    claims = claims[
        ~claims["claim_id"].isin(NOT_REPEATED_CLAIMS) & ~claims["detail"].isin(NOT_REPEATED_DETAILS)
    ]
    tag(metrics, repeat, kind).to_csv(output.metrics, sep="\t", index=False)
    out["scans"].to_csv(output.test_scans, sep="\t", index=False)
    tag(claims, repeat, kind).to_csv(output.claims, sep="\t", index=False)


def tag(table: pd.DataFrame, repeat: str, kind: str) -> pd.DataFrame:
    """``table`` with the columns repeat and split_kind in front."""
    return table.assign(repeat=repeat, split_kind=kind)[["repeat", "split_kind", *table.columns]]


def paper_metric_values(paper: PaperValues) -> dict[tuple[str, str], float]:
    """The paper's published (rater, metric) values as fractions, from entries compared as metrics.

    Missing cells (value NaN) are left out; the text's CTNet values stand for its Table 2 row.
    """
    values: dict[tuple[str, str], float] = {}
    for entry in paper.entries.itertuples():
        compare = entry.compare if isinstance(entry.compare, dict) else {}
        if compare.get("kind") != "metric" or not np.isfinite(entry.value):
            continue
        scale = 0.01 if entry.unit == "percent" else 1.0
        values.setdefault((compare["rater"], compare["metric"]), entry.value * scale)
    return values


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    values = values[np.isfinite(values)]
    if not len(values):
        return np.nan, np.nan, np.nan
    low, high = np.percentile(values, PERCENTILES)
    return float(np.median(values)), float(low), float(high)


def _position(headline: float, values: np.ndarray) -> float:
    """Share of repeats below the headline value (ties count half): its percentile in the spread."""
    values = values[np.isfinite(values)]
    if not len(values) or not np.isfinite(headline):
        return np.nan
    return float(((values < headline).sum() + 0.5 * (values == headline).sum()) / len(values))


def spread_table(
    metrics: pd.DataFrame,
    claims: pd.DataFrame,
    headline: pd.DataFrame,
    paper: PaperValues | None,
    models: Sequence[str],
) -> pd.DataFrame:
    """Median and 2.5-97.5 percentiles over the repeats, the paper's value and the headline run's.

    Args:
        metrics: every repeat's metrics (repeat, split_kind, rater, metric, value, ...) of one split kind.
        claims: every repeat's claims (repeat, split_kind, claim_id, estimate, verdict, ...).
        headline: the headline run's ``results/evaluation/metrics.tsv`` (the paper's protocol).
        paper: the paper's values, or None.
        models: the repeats' models, CTNet first.

    Returns:
        One row per quantity: quantity (``metric`` or ``claim``), rater, metric (the claim_id for a
        claim: CTNet minus the comparator), n (repeats), median, low, high, paper, headline,
        headline_percentile (its place among the repeats, 0-1).
    """
    published = paper_metric_values(paper) if paper is not None else {}
    headline_values = {(r.rater, r.metric): r.value for r in headline.itertuples()}
    raters = [*models, READER_AVERAGE, ORACLE]
    rows = []
    for rater in raters:
        for metric in SPREAD_METRICS:
            values = metrics.loc[(metrics["rater"] == rater) & (metrics["metric"] == metric), "value"]
            if values.empty:
                continue
            values = values.to_numpy(dtype=float)
            own = headline_values.get((rater, metric), np.nan)
            rows.append(
                ("metric", rater, metric, len(values), *_interval(values))
                + (published.get((rater, metric), np.nan), own, _position(own, values))
            )
    for claim_id, group in claims.groupby("claim_id", sort=False):
        values = group["estimate"].to_numpy(dtype=float)
        rows.append(("claim", models[0], claim_id, len(values), *_interval(values), np.nan, np.nan, np.nan))
    return pd.DataFrame(
        rows,
        columns=[
            "quantity", "rater", "metric", "n", "median", "low", "high", "paper", "headline",
            "headline_percentile",
        ],
    )  # fmt: skip


def holds_table(claims: pd.DataFrame) -> pd.DataFrame:
    """Per claim_id: in how many repeats it holds, does not hold or is undecided, and the sentence.

    Returns:
        claim_id, n_repeats, n_holds, n_does_not_hold, n_undecided, holds_in ("holds in k of n
        repeats"), estimate_median, estimate_low, estimate_high (CTNet minus comparator).
    """
    rows = []
    for claim_id, group in claims.groupby("claim_id", sort=False):
        verdicts = group["verdict"].tolist()
        n, k = len(verdicts), verdicts.count(HOLDS)
        median, low, high = _interval(group["estimate"].to_numpy(dtype=float))
        rows.append(
            {
                "claim_id": claim_id,
                "n_repeats": n,
                "n_holds": k,
                "n_does_not_hold": verdicts.count(DOES_NOT_HOLD),
                "n_undecided": verdicts.count(UNDECIDED),
                "holds_in": f"holds in {k} of {n} repeats",
                "estimate_median": median,
                "estimate_low": low,
                "estimate_high": high,
            }
        )
    return pd.DataFrame(rows)


def with_repeats(claims: pd.DataFrame, holds: pd.DataFrame) -> pd.DataFrame:
    """The headline claims with the repeats' columns joined on claim_id ("not repeated" when absent)."""
    joined = claims.merge(holds, on="claim_id", how="left", validate="1:1")
    joined["holds_in"] = joined["holds_in"].fillna("not repeated")
    return joined


def leakage_table(metrics: pd.DataFrame, model: str) -> pd.DataFrame:
    """What the image-level split adds to ``model``'s metrics, repeat by repeat.

    Args:
        metrics: every repeat's metrics of both split kinds (repeat, split_kind, rater, metric, value).
        model: the model (CTNet).

    Returns:
        One row per metric of :data:`LEAKAGE_METRICS`: n (paired repeats), patient_median,
        image_median, inflation_median (image minus patient, same repeat), inflation_low, inflation_high.
    """
    own = metrics[(metrics["rater"] == model) & metrics["metric"].isin(LEAKAGE_METRICS)]
    wide = own.pivot_table(index=["repeat", "metric"], columns="split_kind", values="value").reset_index()
    rows = []
    for metric in LEAKAGE_METRICS:
        pairs = wide[wide["metric"] == metric]
        if not {"patient", "image"} <= set(pairs.columns) or pairs.empty:
            continue
        pairs = pairs.dropna(subset=["patient", "image"])
        inflation = (pairs["image"] - pairs["patient"]).to_numpy(dtype=float)
        median, low, high = _interval(inflation)
        rows.append(
            {
                "model": model,
                "metric": metric,
                "n": len(pairs),
                "patient_median": float(pairs["patient"].median()),
                "image_median": float(pairs["image"].median()),
                "inflation_median": median,
                "inflation_low": low,
                "inflation_high": high,
            }
        )
    return pd.DataFrame(rows)


#: The validation AUC a convergent training should reach early (issue 22: by epoch 8).
LEARNING_AUC = 0.75


def convergence_table(
    epochs: Sequence[str],
    thresholds: Sequence[str],
    predictions: Sequence[str] | None = None,
    truth_dir: str | Path | None = None,
) -> pd.DataFrame:
    """How each repeat's training converged, from its epochs table and its selected epoch.

    Args:
        epochs: ``results/repeats/{kind}/{repeat}/models/{model}/epochs.tsv`` files.
        thresholds: the matching ``threshold.json`` files (``best_epoch``: the selected epoch).
        predictions: the matching ``predictions/{model}.tsv`` files (their ``val`` rows), needed
            with a truth table only.
        truth_dir: the synthetic cohort's truth folder; when it holds ``scans.tsv``
            (:func:`~htct.paper.comparison.read_truth_scans`), each row gains the image-only
            oracle's AUC on the same validation scans, the ceiling that split's validation set
            allows, which differs from split to split.

    Returns:
        One row per training: repeat, model, epochs_run, best_epoch, best_before_last (the
        selected epoch is not the last one run: the model reached its plateau before the schedule or
        the early stop ended), learning_auc (:data:`LEARNING_AUC`), first_epoch_learning (first
        epoch with validation AUC >= learning_auc, NaN when never), val_auc_selected, and with
        a truth table val_auc_oracle.
    """
    truth = read_truth_scans(truth_dir)
    if truth is not None:
        if predictions is None or len(predictions) != len(epochs):
            raise ValueError("the oracle's validation AUC needs one predictions table per training")
        truth = truth.set_index("scan_id")["p_image_scan"]
    rows = []
    for i, (epochs_path, threshold_path) in enumerate(zip(epochs, thresholds, strict=True)):
        path = Path(epochs_path)
        if path.parent != Path(threshold_path).parent:
            raise ValueError(f"{epochs_path} and {threshold_path} are not of the same training")
        table = pd.read_csv(path, sep="\t")
        best = int(json.loads(Path(threshold_path).read_text())["best_epoch"])
        learning = table.loc[table["val_auc"] >= LEARNING_AUC, "epoch"]
        last = int(table["epoch"].max())
        row = {
            "repeat": path.parents[2].name,
            "model": path.parent.name,
            "epochs_run": last,
            "best_epoch": best,
            "best_before_last": best < last,
            "learning_auc": LEARNING_AUC,
            "first_epoch_learning": float(learning.min()) if len(learning) else float("nan"),
            "val_auc_selected": float(table.loc[table["epoch"] == best, "val_auc"].iloc[0]),
        }
        if truth is not None:
            row["val_auc_oracle"] = _oracle_val_auc(predictions[i], path, truth)
        rows.append(row)
    return pd.DataFrame(rows)


def _oracle_val_auc(predictions: str, epochs_path: Path, truth: pd.Series) -> float:
    """The image-only oracle's AUC on the validation scans of the training at ``epochs_path``."""
    same = Path(predictions).stem == epochs_path.parent.name
    if not same or Path(predictions).parents[1] != epochs_path.parents[2]:
        raise ValueError(f"{predictions} and {epochs_path} are not of the same repeat")
    val = pd.read_csv(predictions, sep="\t", dtype=IDS).query("split == 'val'")
    missing = val.loc[~val["scan_id"].isin(truth.index), "scan_id"]
    if len(missing):
        raise ValueError(f"truth scans.tsv has no p_image_scan for validation scan {missing.iloc[0]}")
    return auc(val["y_true"].to_numpy(), truth.loc[val["scan_id"]].to_numpy())


def concat_tsv(paths: Iterable[str]) -> pd.DataFrame:
    """The tables at ``paths`` (TSV), one under the other."""
    return pd.concat([pd.read_csv(p, sep="\t", dtype={"scan_id": str, "patient_id": str}) for p in paths])


def spread_pretty(spread: pd.DataFrame, claim_names: dict[str, str] | None = None) -> pd.DataFrame:
    """The spread table as printed: percent for proportions, AUC to 3 decimals, repeats' interval."""
    claim_names = claim_names or {}

    def number(value: float, is_auc: bool) -> str:
        if not np.isfinite(value):
            return "—"
        return f"{value:.3f}" if is_auc else f"{100 * value:.1f}"

    rows = []
    for row in spread.itertuples():
        is_auc = "auc" in row.metric
        name = (
            f"{display_name(row.rater)}: {METRIC_NAMES.get(row.metric, row.metric)}"
            if row.quantity == "metric"
            else f"{claim_names.get(row.metric, row.metric)} (CTNet minus comparator)"
        )
        place = "—" if not np.isfinite(row.headline_percentile) else f"{100 * row.headline_percentile:.0f}th"
        rows.append(
            {
                "Quantity": name,
                "Repeats": row.n,
                "Median (2.5–97.5th percentile)": (
                    f"{number(row.median, is_auc)} ({number(row.low, is_auc)} to {number(row.high, is_auc)})"
                ),
                "Headline run (its percentile)": f"{number(row.headline, is_auc)} ({place})",
                "The paper": number(row.paper, is_auc),
            }
        )
    return pd.DataFrame(rows).set_index("Quantity")


def leakage_pretty(leakage: pd.DataFrame) -> pd.DataFrame:
    """The leakage table as printed (AUC to 3 decimals, the others in percent points)."""
    rows = []
    for row in leakage.itertuples():
        scale, digits, unit = (1.0, 3, "") if row.metric == "auc" else (100.0, 1, " points")
        rows.append(
            {
                "Metric": METRIC_NAMES.get(row.metric, row.metric),
                "Repeats": row.n,
                "Patient-level split (median)": f"{scale * row.patient_median:.{digits}f}",
                "Image-level split (median)": f"{scale * row.image_median:.{digits}f}",
                "Inflation (2.5–97.5th percentile)": (
                    f"{scale * row.inflation_median:+.{digits}f}{unit} "
                    f"({scale * row.inflation_low:+.{digits}f} to {scale * row.inflation_high:+.{digits}f})"
                ),
            }
        )
    return pd.DataFrame(rows).set_index("Metric")


def claims_with_repeats(
    claims: pd.DataFrame, claims_pretty: pd.DataFrame, holds: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The headline claims (tidy and printed) with each claim's "holds in k of n repeats" and the
    repeats' median difference and 2.5-97.5th percentiles, joined on claim_id."""
    joined = with_repeats(claims, holds)

    def spread(row: pd.Series) -> str:
        if not np.isfinite(row["estimate_median"]):
            return row["holds_in"]
        scale, digits = (1.0, 3) if "auc" in row["claim_id"] or "attention" in row["claim_id"] else (100.0, 1)
        return (
            f"{row['holds_in']}; median {scale * row['estimate_median']:+.{digits}f} "
            f"({scale * row['estimate_low']:.{digits}f} to {scale * row['estimate_high']:.{digits}f})"
        )

    pretty = claims_pretty.copy()
    pretty.insert(2, "Repeats", joined.apply(spread, axis=1).to_numpy())
    return joined, pretty

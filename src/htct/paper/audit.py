"""A consistency audit of the paper's own numbers, computed from the values file alone.

Each check reads printed numbers from :class:`~htct.paper.values.PaperValues` and returns
findings (``consistent``, ``inconsistent`` or ``not computable``) with the arithmetic that decided:

- **reachable**: a printed percentage of n things must be k/n for an integer k, to the printed
  decimals (74.52% of 61 scans is not: 45/61 = 73.77%, 46/61 = 75.41%); F1, macro-F1 and the AUC
  must come from some confusion matrix / ranking of the stated number of scans.
- **one confusion matrix per row**: a rater's printed accuracy, sensitivity, specificity, PPV, F1
  must all come from one confusion matrix of the stated test size.
- **implied prevalence**: accuracy = prev·sens + (1 − prev)·spec gives the test set's HT share;
  with F1 instead of specificity, PPV = F1·sens / (2 sens − F1) and
  prev = PPV (1 − acc) / (PPV + sens − 2 PPV sens).
- **F1**: printed F1 against 2·sens·PPV / (sens + PPV); macro-F1 against the F1 of both classes.
- **intervals**: printed on the estimate's scale, and containing it.
- **counts**: the cohort, its HT split and the train/test parts against each other.
- **row denominators**: sensitivity, specificity and PPV as k/n of the HT scans, non-HT scans and
  positive calls the row's implied HT share gives.
- **one test set**: the rows of one test set must imply one HT share; each share's binomial p under a
  random split of the cohort.
- **Table 1 rows**: training + test = total per row, the age means combined by n, each column's
  counts adding up to its n (and each printed count / n against its printed share).
- **average row**: a printed average against the mean of the rows it averages, lost cells bounded.
- **text against tables**: the text's means, ranges and cohort figures against the table cells.
- **placement of inferred cells**: each assignment of ``placed_among`` values to their columns
  against the row's own rules.

A printed number with d decimals stands for the interval value ± 0.5·10^-d; a derived quantity is
evaluated at every corner of its inputs' intervals (the formulas are monotone in each input).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from htct.paper.values import PaperValues
from htct.tables.write import _markdown

THRESHOLD_METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "macro_f1")
TEST_SIZES = ("text.test_scans", "text.test_patients")
"""Entries holding the stated test-set sizes (the n of the test metrics)."""
COHORT_SIZES = ("text.patients",)
"""Entries holding the stated cohort size (the n of Table 1's total column)."""
TABLE1_SIZES = {"Total": COHORT_SIZES, "Training": ("text.train_patients",), "Test": ("text.test_patients",)}
"""Entries holding the n of each Table 1 column (the patients a column's percentages are shares of)."""
CONSISTENT, INCONSISTENT, NOT_COMPUTABLE = "consistent", "inconsistent", "not computable"
EPSILON = 1e-9
MAX_TEST_SIZE = 300
"""Largest test size tried when looking for the smallest one that fits a row."""


@dataclass(frozen=True)
class Finding:
    """One audit result.

    Attributes:
        check: the rule (e.g. "reachable as k/n").
        subject: what was checked, in words.
        inputs: the entry ids used.
        result: ``consistent``, ``inconsistent`` or ``not computable``.
        detail: the arithmetic.
    """

    check: str
    subject: str
    inputs: tuple[str, ...]
    result: str
    detail: str


def printed_share(value: float, decimals: int, unit: str) -> tuple[float, float]:
    """The interval of shares (0-1) a printed number stands for: value ± half a unit of its last digit.

    Args:
        value: the printed number.
        decimals: its printed decimals.
        unit: ``percent`` or ``fraction``.

    Returns:
        ``(low, high)`` as fractions.
    """
    scale = 100.0 if unit == "percent" else 1.0
    half = 0.5 * 10.0 ** (-decimals)
    return (value - half) / scale - EPSILON, (value + half) / scale + EPSILON


def numerators(low: float, high: float, n: int) -> list[int]:
    """Integers k with low <= k / n <= high."""
    return list(range(max(0, math.ceil(n * low)), min(n, math.floor(n * high)) + 1))


def smallest_denominator(low: float, high: float, max_n: int = 100_000) -> tuple[int, int] | None:
    """The smallest n (and its k) for which some k / n lies in [low, high]."""
    for n in range(1, max_n + 1):
        ks = numerators(low, high, n)
        if ks:
            return n, ks[0]
    return None


def _confusion_metrics(
    tp: np.ndarray, fn: np.ndarray, fp: np.ndarray, tn: np.ndarray
) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        f1_pos = 2 * tp / (2 * tp + fp + fn)
        f1_neg = 2 * tn / (2 * tn + fn + fp)
        return {
            "accuracy": (tp + tn) / (tp + fn + fp + tn),
            "sensitivity": tp / (tp + fn),
            "specificity": tn / (tn + fp),
            "ppv": tp / (tp + fp),
            "npv": tn / (tn + fn),
            "f1": f1_pos,
            "macro_f1": (f1_pos + f1_neg) / 2,
        }


def confusion_matrices(intervals: dict[str, tuple[float, float]], n: int) -> list[tuple[int, int, int, int]]:
    """Every confusion matrix (TP, FN, FP, TN) of n scans whose metrics lie in the given intervals.

    Args:
        intervals: metric (of :data:`THRESHOLD_METRICS`) -> ``(low, high)`` share.
        n: scans.

    Returns:
        The matching matrices.
    """
    found: list[tuple[int, int, int, int]] = []
    if "accuracy" in intervals and not numerators(*intervals["accuracy"], n):
        return found  # (TP + TN) / n is k/n: no matrix of n scans without a k/n accuracy (a quick exit)
    for n_pos in range(0, n + 1):
        n_neg = n - n_pos
        tp = np.arange(n_pos + 1)
        tn = np.arange(n_neg + 1)
        if "sensitivity" in intervals:
            tp = np.array(numerators(*intervals["sensitivity"], n_pos) if n_pos else [], dtype=int)
        if "specificity" in intervals:
            tn = np.array(numerators(*intervals["specificity"], n_neg) if n_neg else [], dtype=int)
        if tp.size == 0 or tn.size == 0:
            continue
        grid_tp, grid_tn = (a.ravel().astype(float) for a in np.meshgrid(tp, tn, indexing="ij"))
        values = _confusion_metrics(grid_tp, n_pos - grid_tp, n_neg - grid_tn, grid_tn)
        keep = np.ones(grid_tp.size, dtype=bool)
        for metric, (low, high) in intervals.items():
            keep &= (values[metric] >= low) & (values[metric] <= high)
        found += [
            (int(a), int(n_pos - a), int(n_neg - b), int(b))
            for a, b in zip(grid_tp[keep], grid_tn[keep], strict=True)
        ]
    return found


def _auc_reachable(low: float, high: float, n: int) -> list[int]:
    """Numbers of positives (1..n-1) for which an empirical AUC (ties 1/2) of n scans lies in [low, high]."""
    reachable = []
    for n_pos in range(1, n):
        pairs2 = 2 * n_pos * (n - n_pos)  # 2U is an integer with ties counted 1/2
        if numerators(low, high, pairs2):
            reachable.append(n_pos)
    return reachable


def _corners(function: Callable[..., float], intervals: Iterable[tuple[float, float]]) -> tuple[float, float]:
    """Range of a function over the corners of its inputs' intervals (NaN corners ignored)."""
    values = [function(*corner) for corner in itertools.product(*intervals)]
    values = [v for v in values if np.isfinite(v)]
    return (min(values), max(values)) if values else (math.nan, math.nan)


class _Audit:
    """The entries and sizes the checks share."""

    def __init__(self, values: PaperValues) -> None:
        self.values = values
        self.entries = values.entries
        self.present = self.entries[self.entries["value"].notna()]

    def sizes(self, ids: Iterable[str]) -> dict[int, list[str]]:
        """Stated sizes (value -> entry ids), in the order given."""
        out: dict[int, list[str]] = {}
        for entry_id in ids:
            value = self.values.value(entry_id)
            if value is not None:
                out.setdefault(int(value), []).append(entry_id)
        return out

    def share(self, entry: pd.Series) -> tuple[float, float]:
        return printed_share(float(entry["value"]), int(entry["decimals"]), entry["unit"])

    @staticmethod
    def label(entry: pd.Series) -> str:
        unit = "%" if entry["unit"] == "percent" else ""
        return f"{entry['quantity']} {entry['value']:.{int(entry['decimals'])}f}{unit}"


def check_reachable(values: PaperValues) -> list[Finding]:
    """Each printed share against the stated number of things it is a share of."""
    audit = _Audit(values)
    test_sizes = audit.sizes(TEST_SIZES)
    cohort_sizes = audit.sizes(COHORT_SIZES)
    findings = []
    rows = audit.present[
        audit.present["denominator"].notna()
        & ~audit.present["approximate"]
        & audit.present["unit"].isin(["percent", "fraction"])
    ]
    for _, entry in rows.iterrows():
        kind = entry["denominator"]
        low, high = audit.share(entry)
        sizes = test_sizes
        if kind == "patients":
            column = entry["column"] if isinstance(entry["column"], str) else "Total"
            sizes = (
                audit.sizes(TABLE1_SIZES.get(column, COHORT_SIZES))
                if entry["section"] == "Table 1"
                else cohort_sizes
            )
        inputs = (entry["id"], *itertools.chain.from_iterable(sizes.values()))
        if not sizes:
            findings.append(
                Finding("reachable as k/n", audit.label(entry), inputs, NOT_COMPUTABLE, "no stated size")
            )
            continue
        parts, reached = [], []
        for n, ids in sizes.items():
            what = " / ".join(i.split(".")[-1].replace("_", " ") for i in ids)
            if kind in ("patients", "test_scans") and pd.notna(entry["count"]):
                k = int(entry["count"])
                text = f"printed {k}/{n} {what} = {100 * k / n:.{int(entry['decimals']) + 2}f}%"
                reached.append(low <= k / n <= high)
                ks = numerators(low, high, n)
                if not reached[-1]:
                    text += f", not {entry['value']:.{int(entry['decimals'])}f}%" + (
                        f" ({ks[0]}/{n} would be)" if ks else ""
                    )
            elif kind in ("patients", "test_scans"):
                ks = numerators(low, high, n)
                below, above = math.floor(n * low), math.ceil(n * high)
                text = (
                    f"{ks[0]}/{n} {what}"
                    if ks
                    else f"not k/{n} {what} ({below}/{n} = {100 * below / n:.2f}%, {above}/{n} = {100 * above / n:.2f}%)"
                )
                reached.append(bool(ks))
            elif kind in ("test_positive_scans", "test_negative_scans", "test_positive_calls"):
                denominators = [m for m in range(1, n + 1) if numerators(low, high, m)]
                text = (
                    f"k/m with m <= {n} {what} for m in {_short(denominators)}"
                    if denominators
                    else f"no k/m with m <= {n} {what}"
                )
                reached.append(bool(denominators))
            elif kind == "auc":
                splits = _auc_reachable(low, high, n)
                text = (
                    f"an AUC of {n} {what} for {len(splits)} of {n - 1} positive/negative splits"
                    if splits
                    else f"no AUC of {n} {what}"
                )
                reached.append(bool(splits))
            else:  # f1, macro_f1
                matrices = confusion_matrices({kind: (low, high)}, n)
                text = (
                    f"{len(matrices)} confusion matrices of {n} {what}"
                    if matrices
                    else f"no confusion matrix of {n} {what}"
                )
                reached.append(bool(matrices))
            parts.append(text)
        shares = (
            "patients",
            "test_scans",
            "test_positive_scans",
            "test_negative_scans",
            "test_positive_calls",
        )
        smallest = smallest_denominator(low, high) if kind in shares else None
        if smallest:
            parts.append(f"smallest n: {smallest[1]}/{smallest[0]}")
        result = CONSISTENT if any(reached) else INCONSISTENT
        findings.append(Finding("reachable as k/n", audit.label(entry), inputs, result, "; ".join(parts)))
    return findings


def _short(numbers: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return "{" + shown + (f", … ({len(numbers)} in all)" if len(numbers) > limit else "") + "}"


def _rater_groups(audit: _Audit) -> dict[str, pd.DataFrame]:
    """Printed test metrics grouped by rater row: id ``<section>.<row>.<metric>``."""
    rows = audit.present[audit.present["id"].str.rsplit(".", n=1).str[-1].isin([*THRESHOLD_METRICS, "auc"])]
    rows = rows[~rows["approximate"] & rows["denominator"].notna()]
    groups = {}
    for key, group in rows.groupby(rows["id"].str.rsplit(".", n=1).str[0], sort=False):
        groups[key] = group.assign(metric=group["id"].str.rsplit(".", n=1).str[-1]).set_index("metric")
    return groups


def check_confusion_rows(values: PaperValues) -> list[Finding]:
    """A rater's printed threshold metrics must come from one confusion matrix of the test size."""
    audit = _Audit(values)
    findings = []
    for key, group in _rater_groups(audit).items():
        metrics = [m for m in group.index if m in THRESHOLD_METRICS]
        if len(metrics) < 2:
            continue
        intervals = {m: audit.share(group.loc[m]) for m in metrics}
        subject = f"{key}: " + ", ".join(audit.label(group.loc[m]).split(" ")[-1] + f" {m}" for m in metrics)
        sizes = audit.sizes(TEST_SIZES)
        inputs = (*group.loc[metrics, "id"], *itertools.chain.from_iterable(sizes.values()))
        if not sizes:
            findings.append(
                Finding("one confusion matrix", subject, inputs, NOT_COMPUTABLE, "no stated test size")
            )
            continue
        parts, any_match = [], False
        for n in sizes:
            matches = confusion_matrices(intervals, n)
            any_match |= bool(matches)
            examples = "; ".join(f"TP {a} FN {b} FP {c} TN {d}" for a, b, c, d in matches[:3])
            parts.append(f"{len(matches)} matrices of {n} scans" + (f" (e.g. {examples})" if matches else ""))
        smallest = next((n for n in range(2, MAX_TEST_SIZE + 1) if confusion_matrices(intervals, n)), None)
        parts.append(
            f"smallest test size that fits: {smallest}"
            if smallest
            else f"no test size up to {MAX_TEST_SIZE} fits"
        )
        findings.append(
            Finding(
                "one confusion matrix",
                subject,
                inputs,
                CONSISTENT if any_match else INCONSISTENT,
                "; ".join(parts),
            )
        )
    return findings


def implied_prevalence(
    accuracy: tuple[float, float],
    sensitivity: tuple[float, float],
    specificity: tuple[float, float] | None = None,
    ppv: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """The range of HT prevalence a row's printed metrics imply (shares in, shares out).

    From specificity: prev = (acc − spec) / (sens − spec). From PPV instead:
    prev = PPV (1 − acc) / (PPV + sens − 2 PPV sens).

    Args:
        accuracy: printed interval of the accuracy.
        sensitivity: of the sensitivity.
        specificity: of the specificity, or None.
        ppv: of the PPV, used when the specificity is None.

    Returns:
        ``(low, high)``; NaN when neither specificity nor PPV is given or the formula is undefined.
    """
    if specificity is not None:
        return _corners(
            lambda a, s, c: (a - c) / (s - c) if abs(s - c) > EPSILON else math.nan,
            [accuracy, sensitivity, specificity],
        )
    if ppv is not None:
        return _corners(
            lambda a, s, p: (
                p * (1 - a) / (p + s - 2 * p * s) if abs(p + s - 2 * p * s) > EPSILON else math.nan
            ),
            [accuracy, sensitivity, ppv],
        )
    return math.nan, math.nan


def ppv_from_f1(f1: tuple[float, float], sensitivity: tuple[float, float]) -> tuple[float, float]:
    """PPV implied by F1 and sensitivity: F1 = 2 s p / (s + p)  =>  p = F1 s / (2 s − F1)."""
    return _corners(lambda f, s: f * s / (2 * s - f) if 2 * s - f > EPSILON else math.nan, [f1, sensitivity])


def split_probability(low: float, high: float, n: int, cohort_shares: Iterable[float]) -> float:
    """Two-sided binomial p of a test set's HT share under a random split of the cohort.

    Args:
        low: lowest implied HT share of the test set.
        high: highest.
        n: test scans.
        cohort_shares: the cohort's HT share(s) as printed.

    Returns:
        The largest two-sided exact binomial p over the HT counts k/n in [low, high] (the nearest
        integer when none is) and the cohort shares: the most favourable reading.
    """
    ks = numerators(max(low, 0.0), min(high, 1.0), n) or [min(n, max(0, round(n * (low + high) / 2)))]
    return max(stats.binomtest(k, n, share).pvalue for k in ks for share in cohort_shares)


def check_prevalence(values: PaperValues, alpha: float = 0.01) -> list[Finding]:
    """The HT share of the test set each rater row implies, against the cohort's HT share.

    A random (or stratified) split of the cohort gives the test set about the cohort's share; the
    implied share is called inconsistent when it is outside [0, 1] or when the HT count it implies
    for the stated test size is outside the central ``1 - alpha`` binomial range at the cohort's
    share (every HT figure the paper prints is tried).
    """
    audit = _Audit(values)
    patients = values.value("text.patients")
    cohort_ht = [
        values.value(i)
        for i in ("text.patients_ht", "text.patients_ht_elsewhere")
        if values.value(i) is not None
    ]
    test_n = next(iter(audit.sizes(TEST_SIZES)), None)
    findings = []
    for key, group in _rater_groups(audit).items():
        share = {m: audit.share(group.loc[m]) for m in group.index if m in THRESHOLD_METRICS}
        inputs = tuple(group["id"])
        if "accuracy" not in share or "sensitivity" not in share:
            continue
        derived = ""
        ppv = share.get("ppv")
        if "specificity" not in share and ppv is None and "f1" in share:
            ppv = ppv_from_f1(share["f1"], share["sensitivity"])
            derived = f"PPV implied by F1 and sensitivity {100 * ppv[0]:.1f}–{100 * ppv[1]:.1f}%; "
        low, high = implied_prevalence(share["accuracy"], share["sensitivity"], share.get("specificity"), ppv)
        subject = f"{key}: test-set HT share implied by its printed metrics"
        if not np.isfinite(low):
            findings.append(
                Finding("implied prevalence", subject, inputs, NOT_COMPUTABLE, "needs specificity, PPV or F1")
            )
            continue
        detail = derived + f"implied HT share {100 * low:.1f}–{100 * high:.1f}%"
        result = CONSISTENT
        if high < 0 or low > 1:
            result = INCONSISTENT
            detail += " (outside 0–100%)"
        elif patients and cohort_ht and test_n:
            inputs = (*inputs, "text.patients", "text.patients_ht", "text.test_scans")
            ranges = []
            for ht in cohort_ht:
                p = ht / patients
                lo_k, hi_k = stats.binom.ppf([alpha / 2, 1 - alpha / 2], test_n, p)
                ranges.append((p, lo_k / test_n, hi_k / test_n))
            detail += "; cohort HT share " + ", ".join(f"{100 * p:.1f}%" for p, _, _ in ranges)
            detail += f" gives {test_n} random test scans {100 * min(r[1] for r in ranges):.1f}–"
            detail += f"{100 * max(r[2] for r in ranges):.1f}% ({100 * (1 - alpha):.0f}% binomial range)"
            p_value = split_probability(low, high, test_n, [r[0] for r in ranges])
            detail += f"; probability of so many or so few HT scans under a random split p = {p_value:.2g}"
            if high < min(r[1] for r in ranges) or low > max(r[2] for r in ranges):
                result = INCONSISTENT
        findings.append(Finding("implied prevalence", subject, inputs, result, detail))
    return findings


def check_f1(values: PaperValues) -> list[Finding]:
    """Printed F1 against sensitivity and PPV; printed macro-F1 against the row's other metrics."""
    audit = _Audit(values)
    findings = []
    for key, group in _rater_groups(audit).items():
        share = {m: audit.share(group.loc[m]) for m in group.index}
        if "f1" in share:
            inputs = tuple(group.loc[[m for m in ("f1", "sensitivity", "ppv") if m in share], "id"])
            if "sensitivity" in share and "ppv" in share:
                low, high = _corners(
                    lambda s, p: 2 * s * p / (s + p) if s + p > 0 else math.nan,
                    [share["sensitivity"], share["ppv"]],
                )
                ok = low <= share["f1"][1] and high >= share["f1"][0]
                detail = f"2·sens·PPV/(sens + PPV) = {100 * low:.2f}–{100 * high:.2f}%"
                findings.append(
                    Finding("F1", f"{key}: F1", inputs, CONSISTENT if ok else INCONSISTENT, detail)
                )
            else:
                findings.append(
                    Finding(
                        "F1",
                        f"{key}: F1",
                        inputs,
                        NOT_COMPUTABLE,
                        "sensitivity or PPV not printed in the row",
                    )
                )
        if "macro_f1" in share:
            needed = ("accuracy", "sensitivity", "specificity")
            inputs = tuple(group.loc[[m for m in ("macro_f1", *needed) if m in share], "id"])
            if not all(m in share for m in needed):
                findings.append(
                    Finding(
                        "F1",
                        f"{key}: macro-F1",
                        inputs,
                        NOT_COMPUTABLE,
                        "accuracy, sensitivity or specificity missing",
                    )
                )
                continue

            def macro(a: float, s: float, c: float) -> float:
                prevalence = (a - c) / (s - c) if abs(s - c) > EPSILON else math.nan
                values_ = _confusion_metrics(
                    *(
                        np.array([x])
                        for x in (
                            prevalence * s,
                            prevalence * (1 - s),
                            (1 - prevalence) * (1 - c),
                            (1 - prevalence) * c,
                        )
                    )
                )
                return float(values_["macro_f1"][0])

            low, high = _corners(macro, [share[m] for m in needed])
            ok = np.isfinite(low) and low <= share["macro_f1"][1] and high >= share["macro_f1"][0]
            detail = f"mean of both classes' F1 at the implied prevalence = {100 * low:.2f}–{100 * high:.2f}%"
            findings.append(
                Finding("F1", f"{key}: macro-F1", inputs, CONSISTENT if ok else INCONSISTENT, detail)
            )
    return findings


def check_intervals(values: PaperValues) -> list[Finding]:
    """Every printed interval: on the estimate's scale, and containing the estimate."""
    audit = _Audit(values)
    findings = []
    for _, entry in audit.present[audit.present["ci"].notna()].iterrows():
        low, high = entry["ci"]
        ci_unit = entry["ci_unit"] if isinstance(entry["ci_unit"], str) else entry["unit"]
        scale = {"percent": 100.0, "fraction": 1.0}
        problems = []
        if ci_unit != entry["unit"]:
            problems.append(f"interval printed in {ci_unit} while the estimate is a {entry['unit']}")
        value = entry["value"] / scale.get(entry["unit"], 1.0)
        low_share, high_share = low / scale.get(ci_unit, 1.0), high / scale.get(ci_unit, 1.0)
        if not (low_share - EPSILON <= value <= high_share + EPSILON):
            problems.append(f"estimate {value:.4f} outside {low_share:.4f}–{high_share:.4f}")
        detail = "; ".join(problems) or f"estimate inside {low_share:.4f}–{high_share:.4f}, same scale"
        findings.append(
            Finding(
                "interval",
                audit.label(entry),
                (entry["id"],),
                INCONSISTENT if problems else CONSISTENT,
                detail,
            )
        )
    return findings


def check_counts(values: PaperValues) -> list[Finding]:
    """The cohort, HT split, train/test parts and Table 1 shares against each other."""
    v = values.value
    findings = []

    def add(
        check: str, subject: str, ids: tuple[str, ...], test: Callable[[], tuple[bool | None, str]]
    ) -> None:
        if any(v(i) is None for i in ids):
            absent = [i for i in ids if v(i) is None]
            findings.append(Finding(check, subject, ids, NOT_COMPUTABLE, f"not printed: {', '.join(absent)}"))
            return
        ok, detail = test()  # ok None: the numbers are printed but do not decide the check
        result = NOT_COMPUTABLE if ok is None else CONSISTENT if ok else INCONSISTENT
        findings.append(Finding(check, subject, ids, result, detail))

    for suffix in ("", "_elsewhere"):
        ids = (f"text.patients_ht{suffix}", f"text.patients_non_ht{suffix}", "text.patients")

        def total(ids: tuple[str, ...] = ids) -> tuple[bool, str]:
            a, b, n = (v(i) for i in ids)
            return a + b == n, f"{a:.0f} + {b:.0f} = {a + b:.0f} vs {n:.0f} patients"

        add("counts", f"HT + non-HT patients{' (elsewhere)' if suffix else ''} = cohort", ids, total)
    pair = (
        "text.patients_ht",
        "text.patients_non_ht",
        "text.patients_ht_elsewhere",
        "text.patients_non_ht_elsewhere",
    )
    add(
        "counts",
        "the HT / non-HT split printed the same way throughout",
        pair,
        lambda: (
            (v(pair[0]), v(pair[1])) == (v(pair[2]), v(pair[3])),
            f"{v(pair[0]):.0f}/{v(pair[1]):.0f} and {v(pair[2]):.0f}/{v(pair[3]):.0f} HT/non-HT",
        ),
    )
    add(
        "counts",
        "one scan count",
        ("text.scans", "text.scans_elsewhere"),
        lambda: (
            v("text.scans") == v("text.scans_elsewhere"),
            f"{v('text.scans'):.0f} vs {v('text.scans_elsewhere'):.0f}",
        ),
    )
    add(
        "counts",
        "training + test patients = cohort (a patient in one part only)",
        ("text.train_patients", "text.test_patients", "text.patients"),
        lambda: (
            v("text.train_patients") + v("text.test_patients") == v("text.patients"),
            f"{v('text.train_patients'):.0f} + {v('text.test_patients'):.0f} = "
            f"{v('text.train_patients') + v('text.test_patients'):.0f} vs {v('text.patients'):.0f} patients"
            + (
                f": {v('text.train_patients') + v('text.test_patients') - v('text.patients'):.0f} patients more than "
                "the cohort, so some patients would be in both parts"
                if v("text.train_patients") + v("text.test_patients") > v("text.patients")
                else ""
            ),
        ),
    )
    for scans_id in ("text.scans", "text.scans_elsewhere"):
        ids = ("text.train_scans", "text.test_scans", scans_id)
        add(
            "counts",
            f"training + test scans = {scans_id.split('.')[-1].replace('_', ' ')}",
            ids,
            lambda ids=ids: (
                v(ids[0]) + v(ids[1]) == v(ids[2]),
                f"{v(ids[0]):.0f} + {v(ids[1]):.0f} = {v(ids[0]) + v(ids[1]):.0f} vs {v(ids[2]):.0f} scans",
            ),
        )
    for unit, part, whole in (
        ("patients", "text.test_patients", "text.patients"),
        ("scans", "text.test_scans", "text.scans"),
    ):
        ids = (part, whole, "text.test_fraction")

        def fraction(part: str = part, whole: str = whole, unit: str = unit) -> tuple[bool, str]:
            share = v(part) / v(whole)
            expected = v("text.test_fraction") / 100
            n_expected = v(whole) * expected
            ok = abs(v(part) - n_expected) <= 1
            return (
                ok,
                f"{v(part):.0f}/{v(whole):.0f} {unit} = {100 * share:.1f}% (a {100 * expected:.0f}% split gives {n_expected:.1f})",
            )

        add("counts", f"test share of the {unit} = the stated split", ids, fraction)
    add(
        "counts",
        "scans per patient in the test set vs the cohort",
        ("text.test_scans", "text.test_patients", "text.scans", "text.patients"),
        lambda: (
            None,
            f"test {v('text.test_scans') / v('text.test_patients'):.2f}, cohort "
            f"{v('text.scans') / v('text.patients'):.2f} scans per patient; whether a patient-level split can "
            "give this depends on how many patients have one scan, which is not printed",
        ),
    )
    findings += _share_sums(values)
    return findings


def _share_sums(values: PaperValues) -> list[Finding]:
    """Shares of one Table 1 variable and column add up to 100% within their rounding."""
    entries = values.entries
    findings = []
    table1 = entries[(entries["section"] == "Table 1") & (entries["unit"] == "percent")]
    for (column, variable), group in table1.groupby(
        [table1["column"], table1["compare"].map(lambda c: c["variable"] if c else None)], sort=False
    ):
        printed = group[group["value"].notna()]
        ids = tuple(group["id"])
        subject = f"Table 1 {column}: {variable} shares add up to 100%"
        if len(printed) < len(group) or len(group) < 2:
            findings.append(
                Finding(
                    "counts", subject, ids, NOT_COMPUTABLE, f"{len(printed)} of {len(group)} shares printed"
                )
            )
            continue
        total = float(printed["value"].sum())
        slack = float(sum(0.5 * 10.0 ** (-d) for d in printed["decimals"]))
        ok = abs(total - 100) <= slack + EPSILON
        findings.append(
            Finding(
                "counts",
                subject,
                ids,
                CONSISTENT if ok else INCONSISTENT,
                f"sum {total:.2f}% (rounding allows ±{slack:.3f})",
            )
        )
    return findings


# --- every printed cell: Table 1 rows, averages, the text against the tables, one test set, placements


def _column_size(values: PaperValues, column: str) -> tuple[int | None, str]:
    """The stated n of a Table 1 column and the entry it comes from."""
    for entry_id in TABLE1_SIZES.get(column, ()):
        n = values.value(entry_id)
        if n is not None:
            return int(n), entry_id
    return None, ""


def check_table1(values: PaperValues) -> list[Finding]:
    """Table 1: training + test against the total per row, and the counts of each column against its n.

    Each row's printed counts must add up (training + test = total, when every patient is in one part),
    the age means must combine (n-weighted), and each variable's counts must add up to its column's n.
    """
    entries = values.entries[(values.entries["section"] == "Table 1") & values.entries["value"].notna()]
    findings = []
    for row, group in entries.groupby("row", sort=False):
        cells = group.set_index("column")
        if not {"Total", "Training", "Test"} <= set(cells.index):
            continue
        ids = tuple(cells.loc[["Total", "Training", "Test"], "id"])
        if cells["count"].notna().all():
            total, training, test = (int(cells.loc[c, "count"]) for c in ("Total", "Training", "Test"))
            ok = training + test == total
            detail = f"{training} + {test} = {training + test} vs {total}"
            if not ok:
                detail += f" ({training + test - total:+d}: the parts overlap or the total is not their sum)"
            findings.append(
                Finding("Table 1 rows", f"Table 1 {row}: training + test = total", ids, _result(ok), detail)
            )
        elif cells["sd"].notna().all():
            n_train, train_id = _column_size(values, "Training")
            n_test, test_id = _column_size(values, "Test")
            subject = f"Table 1 {row}: total mean = n-weighted mean of training and test"
            if n_train is None or n_test is None:
                findings.append(
                    Finding("Table 1 rows", subject, ids, NOT_COMPUTABLE, "column sizes not printed")
                )
                continue
            half = [0.5 * 10.0 ** (-int(cells.loc[c, "decimals"])) for c in ("Total", "Training", "Test")]
            pooled = _corners(
                lambda a, b, n1=n_train, n2=n_test: (n1 * a + n2 * b) / (n1 + n2),
                [
                    (cells.loc["Training", "value"] - half[1], cells.loc["Training", "value"] + half[1]),
                    (cells.loc["Test", "value"] - half[2], cells.loc["Test", "value"] + half[2]),
                ],
            )
            total = float(cells.loc["Total", "value"])
            ok = pooled[0] <= total + half[0] and pooled[1] >= total - half[0]
            detail = f"({n_train}·training + {n_test}·test) / {n_train + n_test} = {pooled[0]:.3f}–{pooled[1]:.3f} vs {total:.2f}"
            findings.append(Finding("Table 1 rows", subject, (*ids, train_id, test_id), _result(ok), detail))
    counted = entries[entries["count"].notna()]
    variables = counted["compare"].map(lambda c: c.get("variable") if isinstance(c, dict) else None)
    for (column, variable), group in counted.groupby([counted["column"], variables], sort=False):
        n, size_id = _column_size(values, column)
        subject = f"Table 1 {column}: {variable} counts add up to the column's patients"
        ids = (*group["id"], size_id) if size_id else tuple(group["id"])
        if n is None:
            findings.append(
                Finding("Table 1 rows", subject, ids, NOT_COMPUTABLE, "the column's n is not printed")
            )
            continue
        total = int(group["count"].sum())
        detail = " + ".join(str(int(k)) for k in group["count"]) + f" = {total} vs {n} patients"
        findings.append(Finding("Table 1 rows", subject, ids, _result(total == n), detail))
    return findings


def _result(ok: bool) -> str:
    return CONSISTENT if ok else INCONSISTENT


def _half(entry: pd.Series) -> float:
    return 0.5 * 10.0 ** (-int(entry["decimals"]))


def check_averages(values: PaperValues) -> list[Finding]:
    """A printed average row against the mean of the rows it averages, per column.

    Lost cells are bounded by the scale (0–100%): the printed average is consistent when some values
    of the lost cells give it, and the detail states the mean the lost cells must have. When that
    forces every lost specificity to 100%, those raters made no false-positive call, so their PPV is
    100% wherever their sensitivity is above 0: the PPV column's average is then checked with that.
    """
    entries = values.entries
    findings = []
    averages = entries[entries["average_of"].notna() & entries["value"].notna()]
    forced: dict[str, list[str]] = {}
    for _, average in averages.iterrows():
        metric = average["id"].rsplit(".", 1)[-1]
        members = entries[
            (entries["section"] == average["section"])
            & entries["row"].fillna("").str.startswith(str(average["average_of"]))
            & (entries["id"].str.rsplit(".", n=1).str[-1] == metric)
        ]
        printed, lost = members[members["value"].notna()], members[members["value"].isna()]
        k = len(members)
        subject = (
            f"{average['row']} {average['column']} = mean of the {k} {average['average_of'].lower()} rows"
        )
        ids = (average["id"], *members["id"])
        if k == 0:
            findings.append(Finding("average row", subject, ids, NOT_COMPUTABLE, "no rows to average"))
            continue
        top = 100.0 if average["unit"] == "percent" else 1.0
        low = (sum(printed["value"] - printed.apply(_half, axis=1))) / k
        high = (sum(printed["value"] + printed.apply(_half, axis=1)) + top * len(lost)) / k
        a_low, a_high = average["value"] - _half(average), average["value"] + _half(average)
        ok = low <= a_high + EPSILON and high >= a_low - EPSILON
        exact = printed["value"].sum() / k
        if lost.empty:
            detail = f"mean of the {k} printed cells {exact:.4f} (rounding: {low:.3f}–{high:.3f}) vs {average['value']:.2f}"
        else:
            need_low = max(
                0.0, (k * a_low - sum(printed["value"] + printed.apply(_half, axis=1))) / len(lost)
            )
            need_high = min(
                top, (k * a_high - sum(printed["value"] - printed.apply(_half, axis=1))) / len(lost)
            )
            names = ", ".join(lost["row"])
            detail = (
                f"{len(printed)} printed, {len(lost)} lost ({names}): the mean can be {low:.2f}–{high:.2f} vs "
                f"{average['value']:.2f}; the printed average needs the lost cells to average "
                f"{need_low:.2f}–{need_high:.2f}"
                if ok
                else f"{len(printed)} printed, {len(lost)} lost ({names}): even with the lost cells at 0–{top:g} "
                f"the mean is {low:.2f}–{high:.2f}, not {average['value']:.2f}"
            )
            if ok and metric == "specificity" and need_low >= top - 0.5:
                forced[average["section"]] = list(lost["row"])
                detail += f" (so {names} have specificity {top:g}: no false-positive call)"
        findings.append(Finding("average row", subject, ids, _result(ok), detail))
    for _, average in averages[averages["id"].str.endswith(".ppv")].iterrows():
        rows = forced.get(average["section"])
        if not rows:
            continue
        members = entries[
            (entries["section"] == average["section"])
            & entries["row"].fillna("").str.startswith(str(average["average_of"]))
            & entries["id"].str.endswith(".ppv")
        ]
        sensitivity = entries[entries["row"].isin(rows) & entries["id"].str.endswith(".sensitivity")]
        if sensitivity["value"].isna().any() or not (sensitivity["value"] > 0).all():
            continue
        filled = members["value"].where(~members["row"].isin(rows), 100.0)
        if filled.isna().any():
            continue
        halves = members["value"].notna() * members.apply(_half, axis=1)
        low, high = (filled - halves).mean(), (filled + halves).mean()
        ok = low <= average["value"] + _half(average) and high >= average["value"] - _half(average)
        detail = (
            f"the Average specificity forces {', '.join(rows)} to specificity 100 with sensitivity > 0, hence PPV 100: "
            f"the PPV mean is then {low:.2f}–{high:.2f} vs {average['value']:.2f}"
        )
        ids = (average["id"], *members["id"], *sensitivity["id"])
        findings.append(
            Finding(
                "average row",
                f"{average['row']} PPV given the specificity it forces",
                ids,
                _result(ok),
                detail,
            )
        )
    return findings


def check_text_against_tables(values: PaperValues) -> list[Finding]:
    """The text's numbers against the table cells they summarise.

    ``text.readers.<metric>.<stat>`` (the clinicians' mean, lowest, highest) against that statistic of
    Table 2's clinician rows; a Table 1 quantity printed in the text against its Table 1 cell.
    """
    entries = values.entries
    present = entries[entries["value"].notna()]
    findings = []
    readers = present[present["id"].str.startswith("text.readers.")]
    clinicians = present[
        (present["section"] == "Table 2") & present["row"].fillna("").str.startswith("Clinician")
    ]
    for _, entry in readers.iterrows():
        _, _, metric, stat = entry["id"].split(".")
        column = clinicians[clinicians["id"].str.endswith(f".{metric}")]
        total = entries[
            (entries["section"] == "Table 2") & entries["row"].fillna("").str.startswith("Clinician")
        ]
        n_rows = int(total["id"].str.endswith(f".{metric}").sum())
        subject = f"text: clinicians' {metric} {stat} {entry['value']:g} against Table 2"
        if column.empty or len(column) < n_rows:
            findings.append(
                Finding("text against tables", subject, (entry["id"],), NOT_COMPUTABLE, "Table 2 cells lost")
            )
            continue
        scale = _scale(entry["unit"]) / _scale(column["unit"].iloc[0])
        halves = column.apply(_half, axis=1)
        pick = {"min": np.min, "max": np.max, "mean": np.mean}[stat]
        low, high = scale * pick(column["value"] - halves), scale * pick(column["value"] + halves)
        ok = low <= entry["value"] + _half(entry) and high >= entry["value"] - _half(entry)
        detail = f"{stat} of the {len(column)} clinician cells = {scale * pick(column['value']):.4f} vs {entry['value']:g}"
        findings.append(
            Finding("text against tables", subject, (entry["id"], *column["id"]), _result(ok), detail)
        )
    table1 = present[present["compare"].map(lambda c: isinstance(c, dict) and c.get("kind") == "table1")]
    keys = table1["compare"].map(lambda c: (c["group"], c["variable"], c.get("level", "")))
    for _key, group in table1.groupby(keys, sort=False):
        if group["section"].nunique() < 2:
            continue
        text, table = group[group["section"] == "Text"], group[group["section"] == "Table 1"]
        for _, a in text.iterrows():
            for _, b in table.iterrows():
                same = abs(a["value"] - b["value"]) <= _half(a) + _half(b) + EPSILON
                if pd.notna(a["count"]) and pd.notna(b["count"]):
                    same &= a["count"] == b["count"]
                if pd.notna(a["sd"]) and pd.notna(b["sd"]):
                    same &= abs(a["sd"] - b["sd"]) <= _half(a) + _half(b) + EPSILON
                detail = f"text {_cell_text(a)} vs Table 1 {_cell_text(b)}"
                findings.append(
                    Finding(
                        "text against tables",
                        f"text: {a['quantity']} against Table 1",
                        (a["id"], b["id"]),
                        _result(same),
                        detail,
                    )
                )
    return findings


def _scale(unit: str) -> float:
    return 100.0 if unit == "percent" else 1.0


def _cell_text(entry: pd.Series) -> str:
    value = f"{entry['value']:.{int(entry['decimals'])}f}"
    if pd.notna(entry["count"]):
        return f"{int(entry['count'])} ({value})"
    if pd.notna(entry["sd"]):
        return f"{value} ± {entry['sd']:.{int(entry['decimals'])}f}"
    return value


def _row_prevalence(audit: _Audit, group: pd.DataFrame) -> tuple[float, float]:
    """The HT share a row's printed accuracy and sensitivity with its specificity, PPV or F1 imply."""
    share = {m: audit.share(group.loc[m]) for m in group.index if m in THRESHOLD_METRICS}
    if "accuracy" not in share or "sensitivity" not in share:
        return math.nan, math.nan
    ppv = share.get("ppv")
    if "specificity" not in share and ppv is None and "f1" in share:
        ppv = ppv_from_f1(share["f1"], share["sensitivity"])
    return implied_prevalence(share["accuracy"], share["sensitivity"], share.get("specificity"), ppv)


def check_one_test_set(values: PaperValues) -> list[Finding]:
    """Rows evaluated on one test set must imply one HT share (their implied ranges must overlap)."""
    audit = _Audit(values)
    ranges = {}
    for key, group in _rater_groups(audit).items():
        low, high = _row_prevalence(audit, group)
        if np.isfinite(low):
            ranges[key] = (low, high, tuple(group["id"]))
    subject = "rows of the one test set imply one HT share"
    if len(ranges) < 2:
        return [
            Finding("implied prevalence", subject, (), NOT_COMPUTABLE, "fewer than two rows imply a share")
        ]
    low = max(r[0] for r in ranges.values())
    high = min(r[1] for r in ranges.values())
    listed = "; ".join(
        f"{key} {100 * r[0]:.1f}–{100 * r[1]:.1f}%"
        for key, r in sorted(ranges.items(), key=lambda kv: kv[1][0])
    )
    detail = (
        f"common share {100 * low:.1f}–{100 * high:.1f}%" if low <= high else "no common share"
    ) + f" ({listed})"
    inputs = tuple(itertools.chain.from_iterable(r[2] for r in ranges.values()))
    return [Finding("implied prevalence", subject, inputs, _result(low <= high), detail)]


def check_placements(values: PaperValues) -> list[Finding]:
    """Every placement of inferred cells among the columns they could belong to, against the row's rules.

    For each assignment of the cells' values (with their intervals) to the ``placed_among`` columns:
    F1 against 2·sens·PPV/(sens + PPV), the HT share implied through the specificity against the one
    implied through the PPV, and the smallest test size with one confusion matrix for the row.
    """
    entries = values.entries
    findings = []
    done: set[tuple[str, ...]] = set()
    for _, entry in entries[entries["placed_among"].notna()].iterrows():
        ids = tuple(sorted(entry["placed_among"]))
        if ids in done:
            continue
        done.add(ids)
        cells = entries.set_index("id").loc[list(ids)]
        printed = list(zip(cells["value"], cells["ci"], strict=True))
        for order in itertools.permutations(range(len(ids))):
            table = entries.copy()
            for target, source in zip(ids, order, strict=True):
                row = table.index[table["id"] == target][0]
                table.at[row, "value"], table.at[row, "ci"] = printed[source]
            trial = PaperValues(values.paper, table)
            audit = _Audit(trial)
            key = ids[0].rsplit(".", 1)[0]
            group = _rater_groups(audit)[key]
            share = {m: audit.share(group.loc[m]) for m in group.index if m in THRESHOLD_METRICS}
            placed = ", ".join(
                f"{i.rsplit('.', 1)[-1]} {printed[s][0]:g}" for i, s in zip(ids, order, strict=True)
            )
            as_filed = all(trial.value(i) == values.value(i) for i in ids)
            rules, parts = [], []
            if {"sensitivity", "ppv", "f1"} <= set(share):
                f_low, f_high = _corners(
                    lambda s, p: 2 * s * p / (s + p), [share["sensitivity"], share["ppv"]]
                )
                ok = f_low <= share["f1"][1] and f_high >= share["f1"][0]
                rules.append(ok)
                gap = max(0.0, f_low - share["f1"][1], share["f1"][0] - f_high)
                parts.append(
                    f"2·sens·PPV/(sens + PPV) {100 * f_low:.2f}–{100 * f_high:.2f}% vs F1 "
                    f"{100 * sum(share['f1']) / 2:.2f}% ({100 * gap:.2f} points apart)"
                )
            if {"accuracy", "sensitivity", "specificity", "ppv"} <= set(share):
                by_spec = implied_prevalence(share["accuracy"], share["sensitivity"], share["specificity"])
                by_ppv = implied_prevalence(share["accuracy"], share["sensitivity"], None, share["ppv"])
                ok = by_spec[0] <= by_ppv[1] and by_ppv[0] <= by_spec[1]
                rules.append(ok)
                gap = max(0.0, by_spec[0] - by_ppv[1], by_ppv[0] - by_spec[1])
                parts.append(
                    f"HT share via specificity {100 * by_spec[0]:.2f}–{100 * by_spec[1]:.2f}%, via PPV "
                    f"{100 * by_ppv[0]:.2f}–{100 * by_ppv[1]:.2f}% ({100 * gap:.2f} points apart)"
                )
            if {"sensitivity", "f1"} <= set(share) and "ppv" in share:
                p_low, p_high = ppv_from_f1(share["f1"], share["sensitivity"])
                parts.append(f"F1 and sensitivity imply PPV {100 * p_low:.2f}–{100 * p_high:.2f}%")
            intervals = {m: share[m] for m in share}
            smallest = next(
                (n for n in range(2, MAX_TEST_SIZE + 1) if confusion_matrices(intervals, n)), None
            )
            parts.append(
                f"smallest test size with one confusion matrix: {smallest or f'none up to {MAX_TEST_SIZE}'}"
            )
            passed = sum(rules)
            subject = f"{key}: {placed}" + (" (as filed)" if as_filed else "")
            detail = f"{passed} of {len(rules)} rules hold; " + "; ".join(parts)
            findings.append(
                Finding(
                    "placement of inferred cells", subject, ids, _result(bool(rules) and all(rules)), detail
                )
            )
    return findings


def _nearest(share: tuple[float, float], n: int) -> str:
    """The two fractions k/n either side of a printed share."""
    below, above = math.floor(n * share[0]), math.ceil(n * share[1])
    return f"{below}/{n} = {100 * below / n:.2f}%, {above}/{n} = {100 * above / n:.2f}%"


def check_row_denominators(values: PaperValues) -> list[Finding]:
    """Each row's sensitivity, specificity and PPV as k/n with the row's own denominators.

    The HT scans of the test set (n_pos) follow from the HT share the row implies (every integer
    between floor and ceiling of share × test size is tried); the sensitivity must then be k/n_pos, the
    specificity k/(n − n_pos), and the PPV TP/(TP + FP) with the TP and FP those two give.
    """
    audit = _Audit(values)
    test_n = next(iter(audit.sizes(TEST_SIZES)), None)
    findings = []
    for key, group in _rater_groups(audit).items():
        share = {m: audit.share(group.loc[m]) for m in group.index if m in THRESHOLD_METRICS}
        wanted = [m for m in ("sensitivity", "specificity", "ppv") if m in share]
        subject = f"{key}: " + ", ".join(wanted) + " as k/n of the row's own HT and non-HT scans"
        low, high = _row_prevalence(audit, group)
        if test_n is None or not wanted or not np.isfinite(low):
            continue
        candidates = range(max(1, math.floor(low * test_n)), min(test_n - 1, math.ceil(high * test_n)) + 1)
        parts, fits = [], []
        for n_pos in candidates:
            n_neg = test_n - n_pos
            tps = (
                numerators(*share["sensitivity"], n_pos) if "sensitivity" in share else list(range(n_pos + 1))
            )
            tns = (
                numerators(*share["specificity"], n_neg) if "specificity" in share else list(range(n_neg + 1))
            )
            ok = bool(tps) and bool(tns)
            text = [f"{n_pos} HT / {n_neg} non-HT"]
            if "sensitivity" in share:
                text.append(
                    f"sensitivity {tps[0]}/{n_pos}"
                    if tps
                    else f"sensitivity not k/{n_pos} ({_nearest(share['sensitivity'], n_pos)})"
                )
            if "specificity" in share:
                text.append(
                    f"specificity {tns[0]}/{n_neg}"
                    if tns
                    else f"specificity not k/{n_neg} ({_nearest(share['specificity'], n_neg)})"
                )
            if "ppv" in share and ok:
                calls = sorted({(tp, tp + n_neg - tn) for tp in tps for tn in tns})
                hit = [(tp, m) for tp, m in calls if m and share["ppv"][0] <= tp / m <= share["ppv"][1]]
                ok = bool(hit)
                tp, m = (hit or calls)[0]
                text.append(
                    f"PPV {tp}/{m}"
                    if hit
                    else f"PPV not TP/calls ({tp}/{m} = {100 * tp / m:.2f}%)"
                    if m
                    else "no positive call"
                )
            fits.append(ok)
            parts.append(", ".join(text))
        detail = f"implied HT share {100 * low:.1f}–{100 * high:.1f}% of {test_n} scans: " + "; ".join(parts)
        findings.append(Finding("row denominators", subject, tuple(group["id"]), _result(any(fits)), detail))
    return findings


def audit_values(values: PaperValues) -> pd.DataFrame:
    """Run every check.

    Args:
        values: the paper's values.

    Returns:
        One row per finding: ``check, subject, inputs, evidence, result, detail``; ``evidence`` is
        ``read`` when every input was read as printed, else ``uses inferred`` (an input placed by inference)
        or ``uses missing`` (an input lost in the stored page).
    """
    findings = [
        *check_counts(values),
        *check_reachable(values),
        *check_confusion_rows(values),
        *check_prevalence(values),
        *check_one_test_set(values),
        *check_row_denominators(values),
        *check_f1(values),
        *check_intervals(values),
        *check_table1(values),
        *check_averages(values),
        *check_text_against_tables(values),
        *check_placements(values),
    ]
    status = values.entries.set_index("id")["status"]
    rows = []
    for f in findings:
        used = {status.get(i, "missing") for i in f.inputs}
        evidence = "uses missing" if "missing" in used else "uses inferred" if "inferred" in used else "read"
        rows.append((f.check, f.subject, ", ".join(f.inputs), evidence, f.result, f.detail))
    return pd.DataFrame(rows, columns=["check", "subject", "inputs", "evidence", "result", "detail"])


def audit_markdown(findings: pd.DataFrame, values: PaperValues) -> str:
    """The audit as Markdown: a summary, then the inconsistent findings, then all findings by check."""
    counts = findings["result"].value_counts()
    status = values.entries["status"].value_counts()
    lines = [
        "# Audit of the paper's own numbers",
        "",
        f"Computed from the values file only ({values.paper['citation']}). "
        f"Entries: {status.get('read', 0)} read as printed, {status.get('inferred', 0)} inferred (a cell whose "
        f"column the extraction lost, placed by a stated argument), {status.get('missing', 0)} missing (lost). "
        "A printed number with d decimals stands for value ± 0.5·10^-d.",
        "",
        f"**{counts.get(INCONSISTENT, 0)} inconsistent**, {counts.get(CONSISTENT, 0)} consistent, "
        f"{counts.get(NOT_COMPUTABLE, 0)} not computable (values missing).",
        "",
    ]
    inconsistent = findings[findings["result"] == INCONSISTENT]
    if not inconsistent.empty:
        lines += [
            "## Inconsistent",
            "",
            _markdown(inconsistent[["check", "subject", "evidence", "detail"]]),
            "",
        ]
    for check, group in findings.groupby("check", sort=False):
        lines += [
            f"## {check}",
            "",
            _markdown(group[["subject", "evidence", "result", "detail", "inputs"]]),
            "",
        ]
    return "\n".join(lines)

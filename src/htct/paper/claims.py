"""The paper's claims as rows, each decided on a run by the test it needs.

Every row holds an estimate of *CTNet minus the comparator* (or minus a chance level), its two-sided
1 - alpha interval, a p-value and a verdict that follows from them (``tests/test_claims.py`` checks
this for every row):

- **superiority** (``margin`` 0): ``holds`` when the interval lies above 0, ``does not hold`` when it
  lies below 0, else ``undecided``; the p-value is two-sided, below alpha exactly when the interval
  excludes 0.
- **non-inferiority** (``margin`` > 0, "Neurologists-level"): ``holds`` when the interval's lower
  bound lies above -margin (a one-sided test at alpha / 2, as the two-sided interval reads),
  ``does not hold`` when its upper bound lies below -margin (inferior by more than the margin); the
  p-value is the one-sided p of H0: difference <= -margin, below alpha / 2 exactly when it holds.
- ``undecided`` also when the inputs for the test are absent (the reason is in ``detail``).

A claim against *every* comparator ("above every clinician's") is an intersection-union test: it
holds when each comparison holds (no multiplicity correction is needed) and does not hold when any
comparison goes significantly the other way. Its row shows the comparison that decides it: the
weakest (smallest lower bound) when it holds or is undecided, p the largest of the comparisons';
the one that fails (smallest upper bound) when it does not hold, with that comparison's p.

The tests: the AUC against the clinicians' average is the multi-reader multi-case
Obuchowski–Rockette analysis of a standalone algorithm against readers, readers and patients random
(:func:`htct.evaluate.mrmc.standalone_vs_readers`), for superiority and for non-inferiority with the
configured margin; sensitivity, specificity, PPV, F1 and accuracy against each clinician and
sensitivity against each baseline are paired patient-level bootstrap differences (the evaluation's
draws); CTNet's ROC read at the clinicians' mean operating point is
:func:`htct.evaluate.operating_points.matched_operating_points`; the AUC against each baseline is
the paired DeLong test with Obuchowski's patient-clustered covariance; accuracy against each
baseline is the patient-level McNemar test (Durkalski); attention on the infarct is the mean
per-scan lesion enrichment of the test scans against chance (1), one patient bootstrap giving its
interval and p.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import norm

from htct.evaluate import bootstrap_metrics, delong_covariance
from htct.evaluate.bootstrap import (
    bootstrap_patient_draws,
    draws_to_counts,
    patient_codes,
    percentile_ci,
    percentile_p_value,
    scan_weights,
)
from htct.evaluate.mcnemar import clustered_mcnemar_test
from htct.evaluate.mrmc import StandaloneResult, jackknife_aucs, standalone_vs_readers
from htct.evaluate.operating_points import matched_operating_points
from htct.models.registry import display_name

HOLDS, DOES_NOT_HOLD, UNDECIDED = "holds", "does not hold", "undecided"
CLAIM_COLUMNS = [
    "claim_id",
    "claim",
    "paper_says",
    "test",
    "estimate",
    "low",
    "high",
    "p",
    "verdict",
    "detail",
    "hypothesis",
    "margin",
    "unit",
]
SUPERIORITY, NONINFERIORITY = "superiority", "non-inferiority"
AUC_UNIT = "AUC difference"
POINTS_UNIT = "percentage points"
ENRICHMENT_UNIT = "mean enrichment − 1 (× chance)"
UNIT_SCALE = {AUC_UNIT: (1.0, 3), POINTS_UNIT: (100.0, 1), ENRICHMENT_UNIT: (1.0, 2)}
"""How each unit is printed: factor on the stored value (fractions) and decimals."""

KEY_FINDING = (
    "Key findings: 'The model demonstrated higher accuracy and sensitivity compared to clinical physicians "
    "and existing models.'"
)
CONCLUSION = (
    "Abstract, Conclusion: 'this model demonstrated significant performance advantages in testing compared "
    "to both clinical physicians and similar existing models'; title: 'Neurologists-level'"
)
NEUROLOGISTS_LEVEL = (
    "Title: 'Neurologists-level'; summary: 'achieving performance comparable to neurologists'"
)
TABLE2_RESULTS = (
    "Results: 'the deep learning model outperformed specialists across multiple metrics (Table 2)'"
)
F1_RESULTS = (
    "Results: 'the model achieved an F1 score of 78.94 (95% CI, 67.7–86.4), surpassing the specialists, "
    "whose scores ranged from 43.92 to 66.26'"
)
ACCURACY_DISCUSSION = (
    KEY_FINDING + "; Discussion: 'Our model outperformed physicians in accuracy when utilizing only image "
    "information'"
)
BASELINES_SAYS = KEY_FINDING + "; Contribution: 'outperforming existing models and clinicians'"
ATTENTION_SAYS = (
    "Discussion: 'In cases with visible lesions (Figure 3a), the algorithm's focus correlated with the "
    "infarct area'"
)


def verdict(low: float, high: float, margin: float = 0.0) -> str:
    """The verdict of an interval of CTNet minus comparator against ``-margin``.

    ``holds`` when the interval lies above ``-margin``, ``does not hold`` when it lies below it
    (margin 0: superiority; margin > 0: non-inferiority), ``undecided`` otherwise or when a bound is
    not finite.
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return UNDECIDED
    return HOLDS if low > -margin else DOES_NOT_HOLD if high < -margin else UNDECIDED


def combined_verdict(verdicts: Sequence[str]) -> str:
    """Intersection-union: holds if every comparison holds, does not hold if any does not."""
    if not verdicts:
        return UNDECIDED
    if all(v == HOLDS for v in verdicts):
        return HOLDS
    return DOES_NOT_HOLD if DOES_NOT_HOLD in verdicts else UNDECIDED


def _union_p(p_values: Sequence[float]) -> float:
    """p-value of an intersection-union test: the largest of its comparisons' (NaN if any is NaN)."""
    values = np.asarray(p_values, dtype=float)
    return float(values.max()) if values.size and np.isfinite(values).all() else float("nan")


def _row(claim_id: str, claim: str, paper_says: str, test: str, **values: object) -> dict:
    row = dict.fromkeys(CLAIM_COLUMNS, np.nan) | {
        "claim_id": claim_id,
        "claim": claim,
        "paper_says": paper_says,
        "test": test,
        "hypothesis": SUPERIORITY,
        "margin": 0.0,
        "unit": POINTS_UNIT,
    }
    row.update(values)
    return row


def _label(rater: str) -> str:
    return display_name(rater)


def reader_mrmc(test_scans: pd.DataFrame, reference: str, readers: Sequence[str]) -> StandaloneResult:
    """Obuchowski–Rockette analysis of the reference model against the readers, patients as the unit.

    Args:
        test_scans: ``results/evaluation/test_scans.tsv`` (y_true, patient_id, ``p_<rater>``).
        reference: the model (e.g. ``"ctnet"``).
        readers: reader names.

    Returns:
        :func:`~htct.evaluate.mrmc.standalone_vs_readers` on scan-level AUCs with the
        leave-one-patient-out jackknife.
    """
    scores = np.stack([test_scans[f"p_{r}"].to_numpy(dtype=float) for r in (reference, *readers)])
    auc, jack = jackknife_aucs(test_scans["y_true"].to_numpy(), scores, test_scans["patient_id"].to_numpy())
    return standalone_vs_readers(auc[0], auc[1:], jack[:, 0], jack[:, 1:])


def mrmc_table(result: StandaloneResult, reference: str) -> pd.DataFrame:
    """The MRMC analysis as a tidy table (results/paper/mrmc.tsv): one row per analysis."""
    table = result.table.copy()
    table.insert(0, "algorithm", reference)
    table["algorithm_auc"] = result.algorithm_auc
    table["reader_mean_auc"] = float(result.reader_auc.mean())
    table["n_readers"] = result.reader_auc.size
    table["var"] = result.var
    table["cov2"] = result.cov2
    table["ms_r"] = result.ms_r
    table["n_patients"] = result.n_clusters
    return table


def _auc_claims(
    test_scans: pd.DataFrame, reference: str, readers: Sequence[str], alpha: float, margin: float
) -> tuple[list[dict], StandaloneResult | None]:
    """AUC against the clinicians' average: superiority and non-inferiority, one MRMC analysis."""
    test = (
        "Obuchowski–Rockette MRMC, standalone algorithm vs readers (Hillis 2007 §5.3, RJafroc 1T-RRRC): "
        "readers and patients random, leave-one-patient-out jackknife"
    )
    superiority = ("auc_vs_clinician_average", "CTNet's AUC is above the clinicians' average AUC", CONCLUSION)
    noninferiority = (
        "auc_noninferior_to_clinician_average",
        f"CTNet's AUC is not below the clinicians' average AUC by more than {margin:g} (neurologists-level)",
        NEUROLOGISTS_LEVEL,
    )
    ni_test = (
        f"{test}; non-inferiority (Chen, Petrick & Sahiner 2012): H0 difference <= -{margin:g}, one-sided "
        f"at alpha/2 = {alpha / 2:g} (the two-sided interval's lower bound against -{margin:g})"
    )
    units = {"unit": AUC_UNIT}
    ni_fields = {"unit": AUC_UNIT, "hypothesis": NONINFERIORITY, "margin": margin}
    reason = "fewer than 2 readers" if len(readers) < 2 else ""
    result = None
    if not reason:
        try:
            result = reader_mrmc(test_scans, reference, readers)
        except ValueError as error:
            reason = str(error)
    if result is None:
        return [
            _row(*superiority, test, verdict=UNDECIDED, detail=reason, **units),
            _row(*noninferiority, ni_test, verdict=UNDECIDED, detail=reason, **ni_fields),
        ], None
    rrrc = result.table.set_index("analysis").loc["RRRC"]
    fixed = result.table.set_index("analysis").loc["FRRC"]
    detail = (
        f"AUC {_label(reference)} {result.algorithm_auc:.3f} vs clinicians' mean {result.reader_auc.mean():.3f} "
        f"(range {result.reader_auc.min():.3f}–{result.reader_auc.max():.3f}); RRRC t = {rrrc['statistic']:.2f} on "
        f"{rrrc['df']:.1f} df; readers fixed (these clinicians only): {fixed['low']:.3f} to {fixed['high']:.3f}, "
        f"p = {fixed['p']:.3g}; {result.n_clusters} patients"
    )
    estimate, se, df = float(rrrc["estimate"]), float(rrrc["se"]), float(rrrc["df"])
    shifted = (estimate + margin) / se if se > 0 else np.nan
    p_ni = float(norm.sf(shifted) if np.isinf(df) else stats.t.sf(shifted, df)) if se > 0 else np.nan
    bounds = {"estimate": estimate, "low": float(rrrc["low"]), "high": float(rrrc["high"])}
    return [
        _row(
            *superiority,
            test,
            **bounds,
            p=float(rrrc["p"]),
            verdict=verdict(bounds["low"], bounds["high"]),
            detail=detail,
            **units,
        ),
        _row(
            *noninferiority,
            ni_test,
            **bounds,
            p=p_ni,
            verdict=verdict(bounds["low"], bounds["high"], margin),
            detail=f"margin {margin:g} AUC (config paper.noninferiority_margin); t = {shifted:.2f}; {detail}",
            **ni_fields,
        ),
    ], result


def _comparison(name: str, replicates: np.ndarray, estimate: float, alpha: float) -> dict:
    """One paired bootstrap comparison: estimate, percentile interval, the p that agrees with it."""
    low, high = percentile_ci(replicates[:, None], alpha)
    return {
        "name": name,
        "estimate": float(estimate),
        "low": float(low[0]),
        "high": float(high[0]),
        "p": percentile_p_value(replicates),
        "verdict": verdict(float(low[0]), float(high[0])),
    }


def _intersection_row(
    claim_id: str, claim: str, says: str, test: str, comparisons: Sequence[dict], scale: float = 100.0
) -> dict:
    """An intersection-union claim: every comparison must hold; its row shows the deciding one."""
    verdicts = [c["verdict"] for c in comparisons]
    combined = combined_verdict(verdicts)
    if combined == DOES_NOT_HOLD:  # the comparison that fails it, most clearly
        shown = min((c for c in comparisons if c["verdict"] == DOES_NOT_HOLD), key=lambda c: c["high"])
        p, which = shown["p"], "fails on"
    else:
        shown = min(comparisons, key=lambda c: c["low"] if np.isfinite(c["low"]) else -np.inf)
        p, which = _union_p([c["p"] for c in comparisons]), "smallest lower bound"
    digits = 1 if scale == 100.0 else 3
    parts = [
        f"{c['name']} {scale * c['estimate']:+.{digits}f} ({scale * c['low']:.{digits}f} to "
        f"{scale * c['high']:.{digits}f})"
        for c in comparisons
    ]
    return _row(
        claim_id,
        claim,
        says,
        test,
        estimate=shown["estimate"],
        low=shown["low"],
        high=shown["high"],
        p=p,
        verdict=combined,
        detail=f"{which}: {shown['name']}; " + "; ".join(parts),
    )


READER_CLAIMS = {  # metric -> (claim_id, claim, what the paper says)
    "sensitivity": (
        "sensitivity_vs_every_clinician",
        "CTNet's sensitivity is above every clinician's",
        KEY_FINDING,
    ),
    "specificity": (
        "specificity_vs_every_clinician",
        "CTNet's specificity is above every clinician's",
        TABLE2_RESULTS,
    ),
    "ppv": ("ppv_vs_every_clinician", "CTNet's PPV is above every clinician's", TABLE2_RESULTS),
    "f1": ("f1_vs_every_clinician", "CTNet's F1 is above every clinician's", F1_RESULTS),
    "accuracy": (
        "accuracy_vs_every_clinician",
        "CTNet's accuracy is above every clinician's",
        ACCURACY_DISCUSSION,
    ),
}
BOOTSTRAP_TEST = (
    "paired patient-level bootstrap of CTNet minus each {who} (the evaluation's draws), percentile 95% CI, "
    "p from the same interval"
)


def _bootstrap_claims(
    test_scans: pd.DataFrame,
    reference: str,
    readers: Sequence[str],
    baselines: Sequence[str],
    n_bootstrap: int,
    seed: int,
    alpha: float,
) -> list[dict]:
    """Every-clinician rows (sensitivity .. accuracy) and sensitivity against every baseline."""
    reader_test = BOOTSTRAP_TEST.format(who="clinician")
    baseline_claim = (
        "sensitivity_vs_baselines",
        "CTNet's sensitivity is above both baselines'",
        BASELINES_SAYS,
        BOOTSTRAP_TEST.format(who="baseline"),
    )
    raters = [reference, *readers, *baselines]
    result = bootstrap_metrics(
        test_scans["y_true"].to_numpy(),
        test_scans["patient_id"].to_numpy(),
        {r: test_scans[f"call_{r}"].to_numpy(dtype=float) for r in raters},
        dict.fromkeys(raters, 0.5),  # the calls themselves: 1 >= 0.5 is an HT call
        n_bootstrap,
        seed,
        metrics=tuple(READER_CLAIMS),
    )

    def comparisons(metric: str, others: Sequence[str]) -> list[dict]:
        replicates, estimate = result.replicates[metric], result.estimate[metric]
        ref = raters.index(reference)
        return [
            _comparison(
                _label(other),
                replicates[:, ref] - replicates[:, raters.index(other)],
                estimate[ref] - estimate[raters.index(other)],
                alpha,
            )
            for other in others
        ]

    rows = []
    for metric, (claim_id, claim, says) in READER_CLAIMS.items():
        if readers:
            rows.append(_intersection_row(claim_id, claim, says, reader_test, comparisons(metric, readers)))
        else:
            rows.append(_row(claim_id, claim, says, reader_test, verdict=UNDECIDED, detail="no reader study"))
    if baselines:
        rows.append(_intersection_row(*baseline_claim, comparisons("sensitivity", baselines)))
    else:
        rows.append(_row(*baseline_claim, verdict=UNDECIDED, detail="no baseline models"))
    return rows


LOW_VISIBILITY_SAYS = (
    "Discussion: 'the model outperformed specialists in cases with low lesion visibility (Figure 3b)'"
)


def _low_visibility_claim(
    test_scans: pd.DataFrame,
    reference: str,
    readers: Sequence[str],
    visibility: pd.DataFrame | None,
    n_bootstrap: int,
    seed: int,
    alpha: float,
) -> dict:
    """Accuracy against every clinician on the test scans whose infarct is not yet visible."""
    claim = (
        "CTNet's accuracy is above every clinician's on the test scans whose infarct is not yet visible",
        LOW_VISIBILITY_SAYS,
        BOOTSTRAP_TEST.format(who="clinician") + "; the test scans with an infarct not visible on CT only",
    )
    reason = ""
    if not readers:
        reason = "no reader study"
    elif visibility is None or "visible" not in visibility.columns:
        reason = "needs each test scan's lesion visibility (the synthetic truth's 'visible'; a site's data has none)"
    if reason:
        return _row("accuracy_vs_every_clinician_not_visible", *claim, verdict=UNDECIDED, detail=reason)
    visible = visibility.set_index("scan_id")["visible"].astype(str).str.lower()
    subset = test_scans[test_scans["scan_id"].map(visible).eq("false").to_numpy()].reset_index(drop=True)
    if subset["patient_id"].nunique() < 2:
        return _row(
            "accuracy_vs_every_clinician_not_visible",
            *claim,
            verdict=UNDECIDED,
            detail=f"{len(subset)} test scans with an infarct not yet visible: too few to test",
        )
    raters = [reference, *readers]
    result = bootstrap_metrics(
        subset["y_true"].to_numpy(),
        subset["patient_id"].to_numpy(),
        {r: subset[f"call_{r}"].to_numpy(dtype=float) for r in raters},
        dict.fromkeys(raters, 0.5),
        n_bootstrap,
        seed,
        metrics=("accuracy",),
    )
    replicates, estimate = result.replicates["accuracy"], result.estimate["accuracy"]
    comparisons = [
        _comparison(_label(r), replicates[:, 0] - replicates[:, k], estimate[0] - estimate[k], alpha)
        for k, r in enumerate(raters)
        if k > 0
    ]
    row = _intersection_row("accuracy_vs_every_clinician_not_visible", *claim, comparisons)
    row["detail"] = (
        f"{len(subset)} test scans of {subset['patient_id'].nunique()} patients with the infarct not yet "
        f"visible; " + row["detail"]
    )
    return row


PUBLISHED_AUCS = {  # claim id -> (comparator's AUC, what it is, the paper's sentence)
    "auc_above_clinical_data_model": (
        0.787,
        "the AUC of a machine-learning model on clinical data (Dharmasaroja and Dharmasaroja 2012)",
        "Discussion: 'While Dharmasaroja and Dharmasaroja (2012) achieved an AUC of 0.787 using machine "
        "learning on clinical data, a gap remains compared to CTNet's performance.'",
    ),
    "auc_above_clinical_scales": (
        0.68,
        "the best clinical scale's AUC for symptomatic HT (IST-3, Whiteley et al. 2014)",
        "Discussion: 'reporting AUCs ranging from 0.68 (IST-3) to 0.56 (SPAN-100) ... In comparison, CTNet "
        "achieved an AUC of 0.842 (95% CI: 0.758–0.921), demonstrating superior predictive capability.'",
    ),
}
"""Other studies' AUCs that the paper's Discussion sets CTNet against (read from its text)."""


def _published_auc_claims(
    test_scans: pd.DataFrame, reference: str, n_bootstrap: int, seed: int, alpha: float
) -> list[dict]:
    """CTNet's AUC against the other studies' published AUCs the Discussion quotes."""
    test = (
        "CTNet's AUC minus the published value, patient-bootstrap 95% CI, p from the same interval; "
        "cross-study: the other study's own uncertainty and cohort are not part of the test"
    )
    result = bootstrap_metrics(
        test_scans["y_true"].to_numpy(),
        test_scans["patient_id"].to_numpy(),
        {reference: test_scans[f"p_{reference}"].to_numpy(dtype=float)},
        {reference: 0.5},
        n_bootstrap,
        seed,
        metrics=("auc",),
    )
    replicates, estimate = result.replicates["auc"][:, 0], float(result.estimate["auc"][0])
    rows = []
    for claim_id, (value, what, says) in PUBLISHED_AUCS.items():
        c = _comparison("", replicates - value, estimate - value, alpha)
        rows.append(
            _row(
                claim_id,
                f"CTNet's AUC is above {value:g}, {what}",
                says,
                test,
                estimate=c["estimate"],
                low=c["low"],
                high=c["high"],
                p=c["p"],
                verdict=c["verdict"],
                detail=f"AUC {_label(reference)} {estimate:.3f} vs {value:g}",
                unit=AUC_UNIT,
            )
        )
    return rows


def _operating_point_claims(
    test_scans: pd.DataFrame,
    reference: str,
    readers: Sequence[str],
    n_bootstrap: int,
    seed: int,
    alpha: float,
) -> list[dict]:
    """CTNet's ROC at the clinicians' mean specificity and mean sensitivity."""
    test = (
        "CTNet's empirical ROC (vertices joined linearly) read at the clinicians' mean operating point; "
        "patient bootstrap recomputing the clinicians' means and CTNet's ROC in each resample, percentile 95% CI"
    )
    claims = {
        "sensitivity_at_reader_specificity": (
            "sensitivity_at_clinician_specificity",
            "At the clinicians' mean specificity, CTNet's sensitivity is above their mean sensitivity",
            KEY_FINDING + " (at a matched operating point)",
        ),
        "specificity_at_reader_sensitivity": (
            "specificity_at_clinician_sensitivity",
            "At the clinicians' mean sensitivity, CTNet's specificity is above their mean specificity",
            TABLE2_RESULTS + " (at a matched operating point)",
        ),
    }
    if not readers:
        return [_row(*c, test, verdict=UNDECIDED, detail="no reader study") for c in claims.values()]
    points = matched_operating_points(
        test_scans["y_true"].to_numpy(),
        test_scans["patient_id"].to_numpy(),
        test_scans[f"p_{reference}"].to_numpy(dtype=float),
        {r: test_scans[f"call_{r}"].to_numpy(dtype=float) for r in readers},
        n_bootstrap,
        seed,
        alpha,
    ).set_index("quantity")
    rows = []
    for quantity, (claim_id, claim, says) in claims.items():
        r = points.loc[quantity]
        matched, own = (
            ("specificity", "sensitivity")
            if "at_reader_specificity" in quantity
            else (
                "sensitivity",
                "specificity",
            )
        )
        detail = (
            f"clinicians' mean {matched} {100 * r['matched_at']:.1f}%: CTNet's {own} there "
            f"{100 * r['estimate']:.1f}% ({100 * r['low']:.1f}–{100 * r['high']:.1f}) vs the clinicians' "
            f"mean {own} {100 * r['readers_mean']:.1f}% ({100 * r['readers_low']:.1f}–"
            f"{100 * r['readers_high']:.1f}); resamples left out: {int(r['n_undefined'])}"
        )
        rows.append(
            _row(
                claim_id,
                claim,
                says,
                test,
                estimate=r["difference"],
                low=r["difference_low"],
                high=r["difference_high"],
                p=r["p"],
                verdict=verdict(r["difference_low"], r["difference_high"]),
                detail=detail,
            )
        )
    return rows


def _baseline_claims(test_scans: pd.DataFrame, models: Sequence[str], alpha: float) -> list[dict]:
    reference, baselines = models[0], list(models[1:])
    auc_test = "paired DeLong test with Obuchowski's (1997) patient-clustered covariance"
    acc_test = (
        "patient-level McNemar test of correct calls (Durkalski 2003); estimate: accuracy difference "
        "(no interval: decided by p and the sign)"
    )
    auc_claim = ("auc_vs_baselines", "CTNet's AUC is above both baselines'", BASELINES_SAYS, auc_test)
    acc_claim = (
        "accuracy_vs_baselines",
        "CTNet's accuracy is above both baselines'",
        BASELINES_SAYS,
        acc_test,
    )
    if not baselines:
        return [
            _row(*auc_claim, verdict=UNDECIDED, detail="no baseline models", unit=AUC_UNIT),
            _row(*acc_claim, verdict=UNDECIDED, detail="no baseline models"),
        ]
    y = test_scans["y_true"].to_numpy()
    patients = test_scans["patient_id"].to_numpy()
    z = norm.ppf(1 - alpha / 2)
    auc_comparisons, acc_verdicts, acc_rows, acc_parts = [], [], [], []
    for baseline in baselines:
        scores = np.vstack([test_scans[f"p_{reference}"], test_scans[f"p_{baseline}"]]).astype(float)
        try:
            auc, cov = delong_covariance(y, scores, patients)
            se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
        except ValueError:
            auc, se = np.full(2, np.nan), np.nan
        difference = float(auc[0] - auc[1])
        low, high = (difference - z * se, difference + z * se) if se > 0 else (np.nan, np.nan)
        p = float(2 * norm.sf(abs(difference) / se)) if se > 0 else np.nan
        auc_comparisons.append(
            {
                "name": _label(baseline),
                "estimate": difference,
                "low": low,
                "high": high,
                "p": p,
                "verdict": verdict(low, high),
            }
        )
        calls = [test_scans[f"call_{r}"].to_numpy(dtype=int) for r in (reference, baseline)]
        mcnemar = clustered_mcnemar_test(y, calls[0], calls[1], patients)
        accuracy = [float(np.mean(c == y)) for c in calls]
        difference = accuracy[0] - accuracy[1]
        significant = mcnemar.p_value < alpha
        acc_verdicts.append(
            (HOLDS if difference > 0 else DOES_NOT_HOLD if difference < 0 else UNDECIDED)
            if significant
            else UNDECIDED
        )
        acc_rows.append((difference, mcnemar.p_value, baseline, acc_verdicts[-1]))
        acc_parts.append(
            f"{_label(baseline)} {100 * difference:+.1f} points, {mcnemar.method} X² = {mcnemar.statistic:.2f}, "
            f"p = {mcnemar.p_value:.3g}"
        )
    auc_row = _intersection_row(*auc_claim, auc_comparisons, scale=1.0) | {"unit": AUC_UNIT}
    combined = combined_verdict(acc_verdicts)
    if combined == DOES_NOT_HOLD:
        shown = min((r for r in acc_rows if r[3] == DOES_NOT_HOLD), key=lambda r: r[0])
        p = shown[1]
    else:
        shown = max(acc_rows, key=lambda r: (r[1] if np.isfinite(r[1]) else np.inf, -r[0]))
        p = _union_p([r[1] for r in acc_rows])
    acc_row = _row(
        *acc_claim,
        estimate=shown[0],
        p=p,
        verdict=combined,
        detail=f"shown: {_label(shown[2])}; " + "; ".join(acc_parts),
    )
    return [auc_row, acc_row]


def attention_claim(
    attribution_scans: pd.DataFrame | None,
    model: str,
    method: str = "gradcam",
    input_kind: str = "full_head",
    localisation: pd.DataFrame | None = None,
    n_bootstrap: int = 2000,
    seed: int = 2026,
    alpha: float = 0.05,
) -> dict:
    """Attention on the infarct when it is visible (fig. 3a), on the test scans, against chance.

    The statistic is the mean over test scans of the per-scan lesion enrichment (the lesion's share
    of the in-brain evidence over its share of the brain's voxels: 1 is chance, see
    :mod:`htct.attribution.localisation`); its interval and p come from one patient bootstrap. The
    ratio of sums over scans (the attribution stage's ``localisation.tsv`` row, over validation and
    test scans) is given in ``detail`` as a description only: a few scans with large lesion shares
    can carry it while most scans lie below chance.

    Args:
        attribution_scans: the attribution stage's per-scan table
            (``results/attribution/<input>/scans.tsv``: ``method, patient_id, part, enrichment`` and,
            on the synthetic cohort, ``visible``), or None when the stage has not run.
        model: the model (e.g. ``"ctnet"``).
        method: the attribution method of the paper's figure.
        input_kind: ``full_head`` (the paper's input) or ``skull_stripped``.
        localisation: ``results/attribution/localisation.tsv`` for the descriptive ratio, or None.
        n_bootstrap: patient-bootstrap resamples.
        seed: bootstrap seed.
        alpha: 1 - confidence level.

    Returns:
        A claim row: estimate = mean enrichment - 1, ``holds`` when its interval lies above 0.
    """
    test = (
        f"mean per-scan lesion enrichment of {method} maps ({input_kind} input) on the test scans with a "
        "visible infarct, minus chance (1); patient-bootstrap 95% CI, p from the same interval"
    )
    claim = "CTNet's attention lies on the infarct when it is visible"
    fields = {"unit": ENRICHMENT_UNIT}
    ratio = ""
    if localisation is not None:
        rows = localisation[
            (localisation["model"] == model)
            & (localisation["input"] == input_kind)
            & (localisation["method"] == method)
            & (localisation["metric"] == "lesion_enrichment")
        ]
        if not rows.empty and rows.iloc[0]["n_scans"] > 0:
            r = rows.iloc[0]
            ratio = (
                f"; descriptive, ratio of sums over {int(r['n_scans'])} validation and test scans: "
                f"{r['estimate']:.3g} ({r['lower']:.3g}–{r['upper']:.3g}), attribution stage's verdict: "
                f"{r['verdict']}"
            )
    if attribution_scans is None:
        return _row(
            "attention_on_infarct",
            claim,
            ATTENTION_SAYS,
            test,
            verdict=UNDECIDED,
            detail="no per-scan attribution results" + ratio,
            **fields,
        )
    scans = attribution_scans[(attribution_scans["method"] == method) & (attribution_scans["part"] == "test")]
    if "visible" in scans.columns:
        scans = scans[scans["visible"].astype(str).str.lower() == "true"]
    scans = scans.dropna(subset=["enrichment"])
    if scans.empty:
        return _row(
            "attention_on_infarct",
            claim,
            ATTENTION_SAYS,
            test,
            verdict=UNDECIDED,
            detail=f"no test scan with a visible infarct and a {method} map ({input_kind} input)" + ratio,
            **fields,
        )
    enrichment = scans["enrichment"].to_numpy(dtype=float)
    codes, patients = patient_codes(scans["patient_id"].astype(str))
    draws = bootstrap_patient_draws(len(patients), n_bootstrap, seed)
    weights = scan_weights(draws_to_counts(draws, len(patients)), codes)  # a patient's scans together
    replicates = (weights @ enrichment) / weights.sum(axis=1) - 1.0
    comparison = _comparison("", replicates, enrichment.mean() - 1.0, alpha)
    detail = (
        f"{len(scans)} test scans of {scans['patient_id'].nunique()} patients: mean enrichment "
        f"{enrichment.mean():.2f}, median {np.median(enrichment):.2f}, below chance in "
        f"{int((enrichment < 1).sum())}" + ratio
    )
    return _row(
        "attention_on_infarct",
        claim,
        ATTENTION_SAYS,
        test,
        estimate=comparison["estimate"],
        low=comparison["low"],
        high=comparison["high"],
        p=comparison["p"],
        verdict=comparison["verdict"],
        detail=detail,
        **fields,
    )


def paper_claims(
    test_scans: pd.DataFrame,
    models: Sequence[str],
    n_bootstrap: int = 2000,
    seed: int = 2026,
    alpha: float = 0.05,
    localisation: pd.DataFrame | None = None,
    attribution_method: str = "gradcam",
    noninferiority_margin: float = 0.05,
    attribution_scans: pd.DataFrame | None = None,
    visibility: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Every claim row, and the MRMC analysis behind the AUC rows.

    Args:
        test_scans: ``results/evaluation/test_scans.tsv``.
        models: the models, reference (CTNet) first.
        n_bootstrap: bootstrap resamples (the evaluation's, so the draws are the same).
        seed: bootstrap seed (the evaluation's).
        alpha: 1 - confidence level of every interval.
        localisation: ``results/attribution/localisation.tsv`` (the attention row's descriptive ratio
            of sums), or None.
        attribution_method: the method of the paper's attention figure.
        noninferiority_margin: AUC margin of the non-inferiority ("neurologists-level") row.
        attribution_scans: ``results/attribution/full_head/scans.tsv`` (per-scan values that decide
            the attention claim), or None: that claim is then undecided.
        visibility: ``scan_id, visible`` per scan (the synthetic truth's ``scans.tsv``) for the claim
            on scans whose infarct is not yet visible (fig. 3b), or None: that claim is undecided.

    Returns:
        ``(claims, mrmc)``: claims with :data:`CLAIM_COLUMNS` (estimates CTNet minus comparator, as
        fractions, printed in ``unit``); the tidy MRMC table, or None without readers.
    """
    reference = models[0]
    baselines = [m for m in models[1:] if f"p_{m}" in test_scans.columns]
    readers = [c[2:] for c in test_scans.columns if c.startswith("p_") and c[2:] not in models]
    auc_rows, mrmc = _auc_claims(test_scans, reference, readers, alpha, noninferiority_margin)
    rows = [
        *auc_rows,
        *_operating_point_claims(test_scans, reference, readers, n_bootstrap, seed, alpha),
        *_bootstrap_claims(test_scans, reference, readers, baselines, n_bootstrap, seed, alpha),
        _low_visibility_claim(test_scans, reference, readers, visibility, n_bootstrap, seed, alpha),
        *_baseline_claims(test_scans, [reference, *baselines], alpha),
        *_published_auc_claims(test_scans, reference, n_bootstrap, seed, alpha),
        attention_claim(
            attribution_scans,
            reference,
            attribution_method,
            localisation=localisation,
            n_bootstrap=n_bootstrap,
            seed=seed,
            alpha=alpha,
        ),
    ]
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS), (None if mrmc is None else mrmc_table(mrmc, reference))


def verdict_agrees(row: pd.Series | dict, alpha: float = 0.05, tolerance: float = 1e-9) -> list[str]:
    """Where a claim row's verdict disagrees with its own estimate, interval and p (empty: none).

    The rules: with an interval, ``holds`` iff its lower bound > -margin, ``does not hold`` iff its
    upper bound < -margin, and the estimate lies inside it; p below alpha (superiority, two-sided)
    or alpha / 2 (non-inferiority, one-sided) iff the interval excludes the null on that side.
    Without an interval (McNemar), ``holds`` iff p < alpha and the estimate > 0, ``does not hold``
    iff p < alpha and the estimate < 0. Without an estimate, the verdict must be ``undecided``.
    ``tolerance`` absorbs rounding where p sits exactly at alpha.
    """
    problems = []
    estimate, low, high, p = (float(row[k]) for k in ("estimate", "low", "high", "p"))
    margin = float(row["margin"])
    verdict_ = row["verdict"]
    if not np.isfinite(estimate):
        return [] if verdict_ == UNDECIDED else [f"verdict {verdict_} without an estimate"]
    if np.isfinite(low) and np.isfinite(high):
        if not low - tolerance <= estimate <= high + tolerance:
            problems.append(f"estimate {estimate:.4g} outside its interval {low:.4g} to {high:.4g}")
        expected = verdict(low, high, margin)
        if verdict_ != expected:
            problems.append(f"verdict {verdict_}, interval says {expected}")
        if np.isfinite(p):
            if row["hypothesis"] == NONINFERIORITY:
                if (p < alpha / 2 - tolerance) != (low > -margin) and abs(p - alpha / 2) > tolerance:
                    problems.append(f"one-sided p {p:.4g} and lower bound {low:.4g} vs -{margin:g} disagree")
            elif (p < alpha) != (low > 0 or high < 0) and abs(p - alpha) > tolerance:
                problems.append(f"p {p:.4g} and interval {low:.4g} to {high:.4g} disagree")
        elif verdict_ != UNDECIDED:
            problems.append(f"verdict {verdict_} without a p-value")
    else:
        expected = UNDECIDED
        if np.isfinite(p) and p < alpha:
            expected = HOLDS if estimate > 0 else DOES_NOT_HOLD if estimate < 0 else UNDECIDED
        if verdict_ != expected:
            problems.append(f"verdict {verdict_}, p {p:.4g} and estimate {estimate:.4g} say {expected}")
    return problems


CLAIM_NOTES = ("Hypothesis", "Test", "Detail", "The paper")
"""The columns of :func:`claims_table` that the HTML page shows under each claim (long text)."""


def claims_table(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims as printed: estimate and interval in each row's unit, verdict, the test and its detail."""

    def interval(row: pd.Series) -> str:
        if not np.isfinite(row["estimate"]):
            return "—"
        scale, digits = UNIT_SCALE.get(row["unit"], (1.0, 3))
        text = f"{scale * row['estimate']:+.{digits}f}"
        if np.isfinite(row["low"]) and np.isfinite(row["high"]):
            text += f" ({scale * row['low']:.{digits}f} to {scale * row['high']:.{digits}f})"
        return text

    def hypothesis(row: pd.Series) -> str:
        if row["hypothesis"] == NONINFERIORITY:
            return f"non-inferiority, margin {row['margin']:g} (one-sided p)"
        return "superiority (two-sided p)"

    return pd.DataFrame(
        {
            "Claim": claims["claim"],
            "Verdict": claims["verdict"],
            "CTNet minus comparator (95% CI)": claims.apply(interval, axis=1),
            "Unit": claims["unit"],
            "p": [
                ("—" if not np.isfinite(p) else "<0.001" if p < 0.001 else f"{p:.3f}") for p in claims["p"]
            ],
            "Hypothesis": claims.apply(hypothesis, axis=1),
            "Test": claims["test"],
            "Detail": claims["detail"],
            "The paper": claims["paper_says"],
        }
    ).set_index("Claim")

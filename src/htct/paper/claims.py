"""The paper's claims as rows, each decided on a run by a computed test.

Verdicts come from two-sided 95% intervals (or level-alpha tests) of *CTNet minus the comparator*:

- ``holds``: the interval lies above 0 (the test rejects equality in CTNet's favour);
- ``does not hold``: the interval lies below 0 (the comparator is significantly better);
- ``undecided``: the interval contains 0, or the inputs for the test are absent (the reason is given).

A claim against *every* comparator ("above every clinician's") is an intersection-union test: it
holds when each comparison holds (no multiplicity correction is needed for an intersection-union
test) and does not hold when any comparison goes significantly the other way.

The tests: the AUC against the clinicians' average is the multi-reader multi-case
Obuchowski–Rockette analysis of a standalone algorithm against readers, readers and patients random
(:func:`htct.evaluate.mrmc.standalone_vs_readers`); sensitivity, F1 and accuracy against each
clinician are paired patient-level bootstrap differences (the evaluation's draws); the AUC against
each baseline is the paired DeLong test with Obuchowski's patient-clustered covariance; accuracy
against each baseline is the patient-level McNemar test (Durkalski); attention on the infarct is
the attribution stage's lesion enrichment against its chance level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from htct.evaluate import bootstrap_metrics, delong_covariance
from htct.evaluate.mcnemar import clustered_mcnemar_test
from htct.evaluate.mrmc import StandaloneResult, jackknife_aucs, standalone_vs_readers
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
]
KEY_FINDING = (
    "Key findings: 'The model demonstrated higher accuracy and sensitivity compared to clinical physicians "
    "and existing models.'"
)
CONCLUSION = (
    "Abstract, Conclusion: 'this model demonstrated significant performance advantages in testing compared "
    "to both clinical physicians and similar existing models'; title: 'Neurologists-level'"
)


def verdict(low: float, high: float) -> str:
    """``holds`` when the interval of CTNet minus comparator is above 0, ``does not hold`` below 0."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return UNDECIDED
    return HOLDS if low > 0 else DOES_NOT_HOLD if high < 0 else UNDECIDED


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


def _auc_claim(
    test_scans: pd.DataFrame, reference: str, readers: Sequence[str], alpha: float
) -> tuple[dict, StandaloneResult | None]:
    claim = "CTNet's AUC is above the clinicians' average AUC"
    test = (
        "Obuchowski–Rockette MRMC, standalone algorithm vs readers (Hillis 2007 §5.3, RJafroc 1T-RRRC): "
        "readers and patients random, leave-one-patient-out jackknife"
    )
    if len(readers) < 2:
        return _row(
            "auc_vs_clinician_average",
            claim,
            CONCLUSION,
            test,
            verdict=UNDECIDED,
            detail="fewer than 2 readers",
        ), None
    try:
        result = reader_mrmc(test_scans, reference, readers)
    except ValueError as error:
        return _row(
            "auc_vs_clinician_average", claim, CONCLUSION, test, verdict=UNDECIDED, detail=str(error)
        ), None
    rrrc = result.table.set_index("analysis").loc["RRRC"]
    fixed = result.table.set_index("analysis").loc["FRRC"]
    detail = (
        f"AUC {_label(reference)} {result.algorithm_auc:.3f} vs clinicians' mean {result.reader_auc.mean():.3f} "
        f"(range {result.reader_auc.min():.3f}–{result.reader_auc.max():.3f}); RRRC t = {rrrc['statistic']:.2f} on "
        f"{rrrc['df']:.1f} df; readers fixed (these clinicians only): {fixed['low']:.3f} to {fixed['high']:.3f}, "
        f"p = {fixed['p']:.3g}; {result.n_clusters} patients"
    )
    row = _row(
        "auc_vs_clinician_average",
        claim,
        CONCLUSION,
        test,
        estimate=rrrc["estimate"],
        low=rrrc["low"],
        high=rrrc["high"],
        p=rrrc["p"],
        verdict=verdict(rrrc["low"], rrrc["high"]),
        detail=detail,
    )
    return row, result


def _every_reader_claims(
    test_scans: pd.DataFrame,
    reference: str,
    readers: Sequence[str],
    n_bootstrap: int,
    seed: int,
    alpha: float,
) -> list[dict]:
    claims = {
        "sensitivity": (
            "sensitivity_vs_every_clinician",
            "CTNet's sensitivity is above every clinician's",
            KEY_FINDING,
        ),
        "f1": (
            "f1_vs_every_clinician",
            "CTNet's F1 is above every clinician's",
            "issue 13 (the paper's sentence is not in the stored text); abstract: 'F1 score of 78.94%'",
        ),
        "accuracy": (
            "accuracy_vs_every_clinician",
            "CTNet's accuracy is above every clinician's",
            KEY_FINDING,
        ),
    }
    test = "paired patient-level bootstrap of CTNet minus each clinician (the evaluation's draws), percentile 95% CI"
    if not readers:
        return [
            _row(i, c, s, test, verdict=UNDECIDED, detail="no reader study") for i, c, s in claims.values()
        ]
    raters = [reference, *readers]
    calls = {r: test_scans[f"call_{r}"].to_numpy(dtype=float) for r in raters}
    result = bootstrap_metrics(
        test_scans["y_true"].to_numpy(),
        test_scans["patient_id"].to_numpy(),
        calls,
        dict.fromkeys(raters, 0.5),  # the calls themselves: 1 >= 0.5 is an HT call
        n_bootstrap,
        seed,
        metrics=tuple(claims),
    )
    differences = result.difference_ci(reference, alpha).set_index(["metric", "rater"])
    rows = []
    for metric, (claim_id, claim, says) in claims.items():
        parts, verdicts, lows, p_values = [], [], [], []
        for reader in readers:
            # difference_ci gives reader - reference: turn it into CTNet - reader
            d = differences.loc[(metric, reader)]
            estimate, low, high = -d["difference"], -d["high"], -d["low"]
            verdicts.append(verdict(low, high))
            p_values.append(d["p_bootstrap"])
            lows.append((low, estimate, high, reader))
            parts.append(f"{reader} {100 * estimate:+.1f} ({100 * low:.1f} to {100 * high:.1f})")
        weakest = min(lows, key=lambda item: item[0] if np.isfinite(item[0]) else -np.inf)
        rows.append(
            _row(
                claim_id,
                claim,
                says,
                test,
                estimate=weakest[1],
                low=weakest[0],
                high=weakest[2],
                p=_union_p(p_values),
                verdict=combined_verdict(verdicts),
                detail=f"smallest lower bound: {weakest[3]}; points: " + "; ".join(parts),
            )
        )
    return rows


def _baseline_claims(test_scans: pd.DataFrame, models: Sequence[str], alpha: float) -> list[dict]:
    reference, baselines = models[0], list(models[1:])
    says = KEY_FINDING + "; Contribution: 'outperforming existing models and clinicians'"
    auc_test = "paired DeLong test with Obuchowski's (1997) patient-clustered covariance"
    acc_test = "patient-level McNemar test of correct calls (Durkalski 2003); estimate: accuracy difference"
    auc_claim = ("auc_vs_baselines", "CTNet's AUC is above both baselines'", says, auc_test)
    acc_claim = ("accuracy_vs_baselines", "CTNet's accuracy is above both baselines'", says, acc_test)
    if not baselines:
        return [
            _row(*claim, verdict=UNDECIDED, detail="no baseline models") for claim in (auc_claim, acc_claim)
        ]
    y = test_scans["y_true"].to_numpy()
    patients = test_scans["patient_id"].to_numpy()
    z = norm.ppf(1 - alpha / 2)
    auc_parts, auc_verdicts, auc_rows = [], [], []
    acc_parts, acc_verdicts, acc_rows = [], [], []
    for baseline in baselines:
        scores = np.vstack([test_scans[f"p_{reference}"], test_scans[f"p_{baseline}"]]).astype(float)
        try:
            auc, cov = delong_covariance(y, scores, patients)
            se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
        except ValueError as error:
            auc, se = np.full(2, np.nan), np.nan
            auc_parts.append(f"{_label(baseline)}: {error}")
        difference = float(auc[0] - auc[1])
        low, high = (difference - z * se, difference + z * se) if se > 0 else (np.nan, np.nan)
        p = float(2 * norm.sf(abs(difference) / se)) if se > 0 else np.nan
        auc_verdicts.append(verdict(low, high))
        auc_rows.append((low, difference, high, p, baseline))
        if np.isfinite(difference):
            auc_parts.append(f"{_label(baseline)} {difference:+.3f} ({low:.3f} to {high:.3f}), p = {p:.3g}")
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
        acc_rows.append((difference, mcnemar.p_value, baseline))
        acc_parts.append(
            f"{_label(baseline)} {100 * difference:+.1f} points, {mcnemar.method} X² = {mcnemar.statistic:.2f}, "
            f"p = {mcnemar.p_value:.3g}"
        )
    weakest_auc = min(auc_rows, key=lambda item: item[0] if np.isfinite(item[0]) else -np.inf)
    weakest_acc = max(acc_rows, key=lambda item: (item[1] if np.isfinite(item[1]) else np.inf, -item[0]))
    return [
        _row(
            *auc_claim,
            estimate=weakest_auc[1],
            low=weakest_auc[0],
            high=weakest_auc[2],
            p=_union_p([row[3] for row in auc_rows]),
            verdict=combined_verdict(auc_verdicts),
            detail=f"weakest: {_label(weakest_auc[4])}; " + "; ".join(auc_parts),
        ),
        _row(
            *acc_claim,
            estimate=weakest_acc[0],
            p=_union_p([row[1] for row in acc_rows]),
            verdict=combined_verdict(acc_verdicts),
            detail=f"weakest: {_label(weakest_acc[2])}; " + "; ".join(acc_parts),
        ),
    ]


def attention_claim(
    localisation: pd.DataFrame | None,
    model: str,
    method: str = "gradcam",
    input_kind: str = "full_head",
    metric: str = "lesion_enrichment",
) -> dict:
    """Attention on the infarct when it is visible (fig. 3a), against the chance level.

    Reads the attribution stage's ``results/attribution/localisation.tsv`` (see
    docs/architecture.md): the row of the paper's design (the model on full-head input, Grad-CAM)
    and the lesion enrichment metric, whose chance level is in its ``chance`` column.

    Args:
        localisation: the localisation table, or None when the attribution stage has not run.
        model: the model (e.g. ``"ctnet"``).
        method: the attribution method of the paper's figure.
        input_kind: ``full_head`` (the paper's input) or ``skull_stripped``.
        metric: the localisation metric.

    Returns:
        A claim row; ``holds`` when the CI of the estimate lies above chance.
    """
    says = "Figure 3a: attention on the infarct area (wording as quoted in issue 18: 'correlated with the infarct area')"
    test = (
        f"{metric} of {method} maps ({input_kind} input) against its chance level, patient-bootstrap 95% CI"
    )
    claim = "CTNet's attention lies on the infarct when it is visible"
    if localisation is None:
        return _row(
            "attention_on_infarct", claim, says, test, verdict=UNDECIDED, detail="no attribution results"
        )
    rows = localisation[
        (localisation["model"] == model)
        & (localisation["input"] == input_kind)
        & (localisation["method"] == method)
        & (localisation["metric"] == metric)
    ]
    if rows.empty:
        return _row(
            "attention_on_infarct",
            claim,
            says,
            test,
            verdict=UNDECIDED,
            detail=f"no localisation row for {model} / {input_kind} / {method} / {metric}",
        )
    r = rows.iloc[0]
    chance = float(r["chance"])
    detail = (
        f"{metric} {r['estimate']:.3g} ({r['lower']:.3g}–{r['upper']:.3g}) vs chance {chance:.3g} on "
        f"{int(r['n_scans'])} scans; attribution stage's verdict: {r['verdict']}"
    )
    return _row(
        "attention_on_infarct",
        claim,
        says,
        test,
        estimate=float(r["estimate"]) - chance,
        low=float(r["lower"]) - chance,
        high=float(r["upper"]) - chance,
        p=float(r["p_value"]) if pd.notna(r["p_value"]) else np.nan,
        verdict=verdict(float(r["lower"]) - chance, float(r["upper"]) - chance),
        detail=detail,
    )


def paper_claims(
    test_scans: pd.DataFrame,
    models: Sequence[str],
    n_bootstrap: int = 2000,
    seed: int = 2026,
    alpha: float = 0.05,
    localisation: pd.DataFrame | None = None,
    attribution_method: str = "gradcam",
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Every claim row, and the MRMC analysis behind the first.

    Args:
        test_scans: ``results/evaluation/test_scans.tsv``.
        models: the models, reference (CTNet) first.
        n_bootstrap: bootstrap resamples (the evaluation's, so the draws are the same).
        seed: bootstrap seed (the evaluation's).
        alpha: 1 - confidence level of every interval.
        localisation: ``results/attribution/localisation.tsv``, or None.
        attribution_method: the method of the paper's attention figure.

    Returns:
        ``(claims, mrmc)``: claims with :data:`CLAIM_COLUMNS` (differences as fractions, CTNet minus
        comparator); the tidy MRMC table, or None without readers.
    """
    reference = models[0]
    readers = [c[2:] for c in test_scans.columns if c.startswith("p_") and c[2:] not in models]
    auc_row, mrmc = _auc_claim(test_scans, reference, readers, alpha)
    rows = [
        auc_row,
        *_every_reader_claims(test_scans, reference, readers, n_bootstrap, seed, alpha),
        *_baseline_claims(test_scans, list(models), alpha),
        attention_claim(localisation, reference, attribution_method),
    ]
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS), (None if mrmc is None else mrmc_table(mrmc, reference))


def claims_table(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims as printed: estimate and interval rounded, verdict, the test and its detail."""

    def interval(row: pd.Series) -> str:
        if not np.isfinite(row["estimate"]):
            return "—"
        scale, digits = (1.0, 3) if "auc" in row["claim_id"] or "attention" in row["claim_id"] else (100.0, 1)
        text = f"{scale * row['estimate']:+.{digits}f}"
        if np.isfinite(row["low"]) and np.isfinite(row["high"]):
            text += f" ({scale * row['low']:.{digits}f} to {scale * row['high']:.{digits}f})"
        return text

    return pd.DataFrame(
        {
            "Claim": claims["claim"],
            "Verdict": claims["verdict"],
            "Difference (95% CI)": claims.apply(interval, axis=1),
            "p": [
                ("—" if not np.isfinite(p) else "<0.001" if p < 0.001 else f"{p:.3f}") for p in claims["p"]
            ],
            "Test": claims["test"],
            "Detail": claims["detail"],
            "The paper": claims["paper_says"],
        }
    ).set_index("Claim")

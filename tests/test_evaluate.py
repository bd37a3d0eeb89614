"""Tests of htct.evaluate: metrics, patient-level bootstrap, DeLong, McNemar, agreement, calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2
from sklearn import metrics as skm

from htct.evaluate import (
    METRICS,
    agreement_tables,
    auc_table,
    binary_metrics,
    bootstrap_metrics,
    calibration_slope_intercept,
    calibration_table,
    cohen_kappa_matrix,
    decision_curve,
    delong_ci,
    delong_covariance,
    delong_test,
    evaluate_raters,
    fleiss_kappa,
    format_ci,
    format_metrics_table,
    mcnemar_test,
    mcnemar_tests,
    net_benefit,
    net_benefit_treat_all,
    percent_agreement,
    rater_inputs,
)
from htct.evaluate.bootstrap import (
    bca_ci,
    bootstrap_patient_draws,
    draws_to_counts,
    patient_codes,
    scan_weights,
    weighted_metrics,
)
from htct.evaluate.mcnemar import clustered_mcnemar_test

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ASAH = SHARED_DATA / "reference" / "asah.csv"


def sklearn_metrics(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """The same metrics from scikit-learn, undefined values as NaN."""
    call = (score >= threshold).astype(int)
    nan = np.nan
    return {
        "accuracy": skm.accuracy_score(y, call),
        "sensitivity": skm.recall_score(y, call, zero_division=nan),
        "specificity": skm.recall_score(y, call, pos_label=0, zero_division=nan),
        "ppv": skm.precision_score(y, call, zero_division=nan),
        "npv": skm.precision_score(y, call, pos_label=0, zero_division=nan),
        "f1": skm.f1_score(y, call, zero_division=nan),
        "macro_f1": skm.f1_score(y, call, average="macro", zero_division=nan),
        # roc_auc_score raises on one class; the AUC is undefined there.
        "auc": skm.roc_auc_score(y, score) if np.unique(y).size == 2 else nan,
    }


def cohort(
    n_patients: int = 30, scans_per_patient: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Patients with several scans, patient-level truth and three raters with graded scores."""
    rng = np.random.default_rng(seed)
    patient_ids = np.repeat([f"P{i:02d}" for i in range(n_patients)], scans_per_patient)
    y = np.repeat(rng.random(n_patients) < 0.5, scans_per_patient).astype(int)
    scores = {
        "model": 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(0, 1, y.size)))),
        "baseline": rng.random(y.size),
        "reader": np.round(rng.random(y.size) * 0.6 + 0.3 * y, 1),  # coarse: ties
    }
    return y, patient_ids, scores


# --- metrics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_sklearn_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(60) < 0.4).astype(int)
    score = np.round(rng.random(60), 2)  # rounding makes ties in AUC
    threshold = rng.uniform(0.3, 0.7)
    ours = binary_metrics(y, score, threshold)
    reference = sklearn_metrics(y, score, threshold)
    assert set(ours) == set(METRICS)
    for name in METRICS:
        assert ours[name] == pytest.approx(reference[name], abs=1e-12), name


def test_all_positive_predictor_reproduces_paper_table3_row() -> None:
    # 20 HT scans of 31 (64.52% prevalence), every scan called HT.
    y = np.r_[np.ones(20), np.zeros(11)].astype(int)
    m = binary_metrics(y, np.ones(31), threshold=0.5)
    assert [round(100 * m[k], 2) for k in ("accuracy", "sensitivity", "specificity", "macro_f1")] == [
        64.52,
        100.00,
        0.00,
        39.22,
    ]
    assert np.isnan(m["npv"])  # no negative calls
    assert m["auc"] == 0.5  # a constant score ties every pair


def test_degenerate_metrics_are_nan_like_sklearn_zero_division_nan() -> None:
    y = np.array([1, 0, 1, 0])
    none_called = binary_metrics(y, np.zeros(4), 0.5)
    assert np.isnan(none_called["ppv"]) and np.isnan(
        skm.precision_score(y, np.zeros(4), zero_division=np.nan)
    )
    assert none_called["sensitivity"] == 0.0 and none_called["specificity"] == 1.0
    no_positives = binary_metrics(np.zeros(4, dtype=int), np.array([0.1, 0.7, 0.2, 0.3]), 0.5)
    assert np.isnan(no_positives["sensitivity"]) and np.isnan(no_positives["auc"])
    assert no_positives["f1"] == skm.f1_score(np.zeros(4), [0, 1, 0, 0], zero_division=np.nan)
    with pytest.raises(ValueError, match="0/1"):
        binary_metrics(np.array([0, 2]), np.array([0.1, 0.2]), 0.5)


# --- DeLong --------------------------------------------------------------------------------------


def slow_delong_covariance(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """O(n^2) DeLong (DeLong et al. 1988) from the pairwise kernel psi, for checking."""
    positives, negatives = scores[:, y == 1], scores[:, y == 0]
    psi = (positives[:, :, None] > negatives[:, None, :]) + 0.5 * (
        positives[:, :, None] == negatives[:, None, :]
    )
    v10 = psi.mean(axis=2)  # [k, m]
    v01 = psi.mean(axis=1)  # [k, n]
    return np.cov(v10) / positives.shape[1] + np.cov(v01) / negatives.shape[1]


def test_delong_covariance_equals_slow_reference() -> None:
    rng = np.random.default_rng(7)
    y = (rng.random(80) < 0.45).astype(int)
    scores = np.vstack(
        [np.round(rng.random(80) + 0.3 * y, 1), rng.random(80) + 0.5 * y, np.round(rng.random(80), 1)]
    )
    auc, covariance = delong_covariance(y, scores)
    np.testing.assert_allclose(covariance, slow_delong_covariance(y, scores), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(auc, [skm.roc_auc_score(y, s) for s in scores], rtol=1e-12)


@pytest.mark.skipif(not ASAH.exists(), reason=f"pROC's aSAH reference data not found at {ASAH}")
def test_delong_matches_proc_on_asah() -> None:
    asah = pd.read_csv(ASAH)
    y = (asah["outcome"] == "Poor").to_numpy(dtype=int)  # higher markers predict Poor: direction "<"
    for marker, expected in {"s100b": (0.7314, 0.6301, 0.8326), "ndka": (0.6120, 0.5012, 0.7227)}.items():
        assert np.round(delong_ci(y, asah[marker]), 4).tolist() == pytest.approx(expected, abs=1e-12), marker
    z, p = delong_test(y, asah["s100b"], asah["ndka"])
    assert round(z, 4) == 1.3908 and round(p, 4) == 0.1643


def test_clustered_auc_variance_equals_a_hand_computation() -> None:
    """Obuchowski (1997) on 3 patients, worked by hand with exact fractions.

    Patient A: HT scan 0.9, non-HT 0.3; B: HT 0.6 and 0.4; C: non-HT 0.5 and 0.2.
    V10 = (1, 1, 2/3), V01 = (1, 2/3, 1), AUC = 8/9. Cluster sums X = (1, 5/3, 0), m = (1, 2, 0);
    Y = (1, 0, 5/3), n = (1, 0, 2); X - m*AUC = (1/9, -1/9, 0), Y - n*AUC = (1/9, 0, -1/9).
    S10 = 2/(1*3) * 2/81 = 4/243 = S01; S11 = 3/2 * 1/81 = 1/54;
    var = 4/243/3 + 4/243/3 + 2/54/9 = 11/729 (unclustered DeLong: 1/81 + 1/81 = 18/729).
    """
    y = np.array([1, 0, 1, 1, 0, 0])
    score = np.array([0.9, 0.3, 0.6, 0.4, 0.5, 0.2])
    patients = np.array(["A", "A", "B", "B", "C", "C"])
    auc, clustered = delong_covariance(y, score, patients)
    assert auc[0] == pytest.approx(8 / 9)
    assert clustered[0, 0] == pytest.approx(11 / 729, rel=1e-12)
    assert delong_covariance(y, score)[1][0, 0] == pytest.approx(18 / 729, rel=1e-12)
    value, low, high = delong_ci(y, score, clusters=patients)
    assert value - low == pytest.approx(1.959963984540054 * np.sqrt(11 / 729)) and high == 1.0  # clipped
    with pytest.raises(ValueError, match=">= 2 patients with each class"):
        delong_covariance(y, score, np.array(["A", "A", "A", "A", "C", "C"]))


def test_clustered_covariance_equals_delong_with_one_scan_per_patient() -> None:
    rng = np.random.default_rng(4)
    y = (rng.random(60) < 0.4).astype(int)
    scores = np.vstack([np.round(rng.random(60) + 0.4 * y, 1), rng.random(60)])
    clustered = delong_covariance(y, scores, np.arange(60))[1]
    np.testing.assert_allclose(clustered, delong_covariance(y, scores)[1], rtol=1e-12, atol=1e-16)


def test_clustered_covariance_equals_a_cluster_loop() -> None:
    """Against a direct transcription of Obuchowski's sums (the loop of iMRMC's doAUCcluster)."""
    rng = np.random.default_rng(8)
    n = 50
    y = rng.integers(0, 2, n)
    clusters = rng.integers(0, 18, n)
    scores = np.round(rng.normal(size=(2, n)) + y, 1)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    psi = lambda x, z: (x > z) + 0.5 * (x == z)  # noqa: E731
    ids = np.unique(clusters)
    parts = []
    for s in scores:
        a = np.mean([psi(s[i], s[j]) for i in pos for j in neg])
        x = np.array([sum(np.mean(psi(s[i], s[neg])) for i in pos if clusters[i] == k) for k in ids])
        z = np.array([sum(np.mean(psi(s[pos], s[j])) for j in neg if clusters[j] == k) for k in ids])
        m = np.array([np.sum(clusters[pos] == k) for k in ids])
        nn = np.array([np.sum(clusters[neg] == k) for k in ids])
        parts.append((x - m * a, z - nn * a))
    i10, i01, i = len(set(clusters[pos])), len(set(clusters[neg])), len(ids)
    big_m, big_n = pos.size, neg.size

    def cov(r: int, t: int) -> float:
        s10 = i10 / ((i10 - 1) * big_m) * np.sum(parts[r][0] * parts[t][0])
        s01 = i01 / ((i01 - 1) * big_n) * np.sum(parts[r][1] * parts[t][1])
        s11 = i / (i - 1) * (np.sum(parts[r][0] * parts[t][1]) + np.sum(parts[t][0] * parts[r][1]))
        return s10 / big_m + s01 / big_n + s11 / (big_m * big_n)

    expected = np.array([[cov(0, 0), cov(0, 1)], [cov(1, 0), cov(1, 1)]])
    np.testing.assert_allclose(delong_covariance(y, scores, clusters)[1], expected, rtol=1e-12)


@pytest.mark.skipif(not ASAH.exists(), reason=f"pROC's aSAH reference data not found at {ASAH}")
def test_clustered_delong_with_one_scan_per_patient_matches_proc_on_asah() -> None:
    asah = pd.read_csv(ASAH)
    y = (asah["outcome"] == "Poor").to_numpy(dtype=int)
    patients = np.arange(y.size)
    assert np.round(delong_ci(y, asah["s100b"], clusters=patients), 4).tolist() == [0.7314, 0.6301, 0.8326]
    z, p = delong_test(y, asah["s100b"], asah["ndka"], clusters=patients)
    assert round(z, 4) == 1.3908 and round(p, 4) == 0.1643


def test_clustered_delong_widens_the_interval_of_correlated_scans() -> None:
    """Three identical copies of each patient's scan: the clustered variance is the per-patient one, the
    scan-level one about a third of it."""
    rng = np.random.default_rng(2)
    y1 = rng.integers(0, 2, 40)
    s1 = rng.random(40) + 0.5 * y1
    y, s, patients = np.repeat(y1, 3), np.repeat(s1, 3), np.repeat(np.arange(40), 3)
    per_patient = delong_covariance(y1, s1)[1][0, 0]
    clustered = delong_covariance(y, s, patients)[1][0, 0]
    naive = delong_covariance(y, s)[1][0, 0]
    assert clustered == pytest.approx(per_patient, rel=1e-10)
    assert naive == pytest.approx(clustered / 3, rel=0.1)


def test_delong_test_is_antisymmetric_and_nan_without_variance() -> None:
    y, _, scores = cohort()
    z_ab, p_ab = delong_test(y, scores["model"], scores["baseline"])
    z_ba, p_ba = delong_test(y, scores["baseline"], scores["model"])
    assert z_ab == pytest.approx(-z_ba) and p_ab == pytest.approx(p_ba) and 0 < p_ab < 1
    assert all(np.isnan(delong_test(y, y * 1.0, y * 2.0)))  # two perfect classifiers


# --- bootstrap -----------------------------------------------------------------------------------


def test_resampling_keeps_a_patients_scans_together() -> None:
    y, patient_ids, _ = cohort(n_patients=25, scans_per_patient=3)
    codes, patients = patient_codes(patient_ids)
    draws = bootstrap_patient_draws(patients.size, n_bootstrap=300, seed=1)
    weights = scan_weights(draws_to_counts(draws, patients.size), codes)
    assert weights.shape == (300, y.size)
    per_patient = weights.reshape(300, 25, 3)  # scans of a patient are adjacent in this cohort
    assert (per_patient == per_patient[:, :, :1]).all()  # same weight for all 3 scans
    assert np.array_equal(weights, np.round(weights)) and weights.min() >= 0
    assert (weights.sum(axis=1) == y.size).all()  # n_patients drawn per resample
    assert (weights == 0).any() and (weights >= 2).any()  # real resampling, not the identity


def test_vectorised_bootstrap_equals_per_resample_loop() -> None:
    y, patient_ids, scores = cohort(n_patients=12, scans_per_patient=2, seed=3)
    thresholds = {"model": 0.5, "baseline": 0.4, "reader": 0.5}
    result = bootstrap_metrics(y, patient_ids, scores, thresholds, n_bootstrap=30, seed=11)
    codes, _ = patient_codes(patient_ids)
    for b, drawn in enumerate(result.draws):
        idx = np.concatenate([np.flatnonzero(codes == p) for p in drawn])
        for r, rater in enumerate(result.raters):
            expected = sklearn_metrics(y[idx], scores[rater][idx], thresholds[rater])
            for metric in METRICS:
                got = result.replicates[metric][b, r]
                assert got == pytest.approx(expected[metric], abs=1e-12, nan_ok=True), (b, rater, metric)


def test_point_estimate_equals_unresampled_metrics_and_draws_are_shared() -> None:
    y, patient_ids, scores = cohort()
    thresholds = dict.fromkeys(scores, 0.5)
    full = bootstrap_metrics(y, patient_ids, scores, thresholds, n_bootstrap=50, seed=5)
    for r, rater in enumerate(full.raters):
        expected = binary_metrics(y, scores[rater], 0.5)
        for metric in METRICS:
            assert full.estimate[metric][r] == pytest.approx(expected[metric], abs=1e-12)
    # A separate call for one rater with the same seed draws the same resamples: paired.
    alone = bootstrap_metrics(
        y, patient_ids, {"reader": scores["reader"]}, thresholds, n_bootstrap=50, seed=5
    )
    assert np.array_equal(alone.draws, full.draws)
    np.testing.assert_array_equal(alone.replicates["auc"][:, 0], full.replicates["auc"][:, 2])


def test_perfect_classifier_ci_is_degenerate_at_one() -> None:
    y, patient_ids, _ = cohort()
    perfect = {"oracle": np.where(y == 1, 0.9, 0.1)}
    for method in ("percentile", "bca"):
        table = evaluate_raters(y, patient_ids, perfect, {"oracle": 0.5}, n_bootstrap=200, ci_method=method)
        assert (table[["value", "low", "high"]].to_numpy() == 1.0).all(), method


def test_bca_interval_contains_estimate_and_is_near_percentile() -> None:
    y, patient_ids, scores = cohort(n_patients=40, seed=2)
    result = bootstrap_metrics(
        y, patient_ids, scores, dict.fromkeys(scores, 0.5), n_bootstrap=1000, jackknife=True
    )
    bca = result.ci("bca")
    percentile = result.ci("percentile")
    assert result.jackknife["auc"].shape == (40, 3)
    assert ((bca["low"] <= bca["value"]) & (bca["value"] <= bca["high"])).all()
    assert (bca["low"] < bca["high"]).all()
    np.testing.assert_allclose(bca[["low", "high"]], percentile[["low", "high"]], atol=0.1)


def test_bca_of_symmetric_statistic_equals_percentile() -> None:
    # Replicates symmetric around the estimate and a symmetric jackknife: z0 = 0 and a = 0,
    # so BCa falls back to the percentile interval.
    replicates = np.r_[np.linspace(-1, 1, 401)][:, None]
    jackknife = np.r_[-1.0, 1.0, -2.0, 2.0][:, None]
    low, high = bca_ci(replicates, np.array([0.0]), jackknife, alpha=0.1)
    np.testing.assert_allclose([low[0], high[0]], np.quantile(replicates, [0.05, 0.95]), atol=1e-12)


def test_undefined_resamples_are_counted_per_metric() -> None:
    """Two patients, one with HT only: sensitivity is undefined in exactly the resamples that miss it."""
    y = np.array([1, 1, 0, 0])
    patients = np.array(["ht", "ht", "no", "no"])
    result = bootstrap_metrics(
        y, patients, {"m": np.array([0.9, 0.2, 0.1, 0.8])}, {"m": 0.5}, n_bootstrap=500, seed=3
    )
    long = result.ci().set_index("metric")
    ht_code = list(result.patients).index("ht")
    without_ht = int(np.sum(~np.any(result.draws == ht_code, axis=1)))
    without_non_ht = int(np.sum(np.all(result.draws == ht_code, axis=1)))
    assert 0 < without_ht < 500
    assert long.loc["sensitivity", "n_undefined"] == without_ht
    assert long.loc["specificity", "n_undefined"] == without_non_ht
    assert long.loc["auc", "n_undefined"] == without_ht + without_non_ht
    assert long.loc["accuracy", "n_undefined"] == 0


def test_paired_differences() -> None:
    y, patient_ids, scores = cohort()
    raters = {"a": scores["model"], "b": scores["model"].copy(), "c": scores["baseline"]}
    result = bootstrap_metrics(y, patient_ids, raters, dict.fromkeys(raters, 0.5), 200)
    diff = result.difference_ci("a").set_index(["rater", "metric"])
    assert len(diff) == 2 * len(METRICS) and set(diff.index.get_level_values("rater")) == {"b", "c"}
    # An identical copy differs by exactly 0 in every resample.
    assert (diff.loc["b", ["difference", "low", "high"]].to_numpy() == 0).all()
    assert (diff.loc["b", "p_bootstrap"] == 1.0).all()
    # A random baseline is clearly worse than the model in AUC, paired resample by resample.
    auc = diff.loc[("c", "auc")]
    assert auc["difference"] == pytest.approx(result.estimate["auc"][2] - result.estimate["auc"][0])
    assert auc["low"] <= auc["difference"] <= auc["high"] < 0 and auc["p_bootstrap"] < 0.05


def test_weighted_metrics_with_unit_weights_match_binary_metrics() -> None:
    y, _, scores = cohort(seed=4)
    matrix = np.column_stack(list(scores.values()))
    values = weighted_metrics(y, matrix, [0.5, 0.3, 0.6], np.ones((1, y.size)))
    for r, (rater, threshold) in enumerate(zip(scores, [0.5, 0.3, 0.6], strict=True)):
        expected = binary_metrics(y, scores[rater], threshold)
        for metric in METRICS:
            assert values[metric][0, r] == pytest.approx(expected[metric], abs=1e-12)


# --- McNemar -------------------------------------------------------------------------------------


def test_mcnemar_exact_on_known_table() -> None:
    # Discordant 2 vs 8 (< 25): exact binomial, p = 2 * P(X <= 2 | 10, 1/2) = 2 * 56 / 1024.
    y = np.ones(30, dtype=int)
    call_a = np.r_[np.ones(10), np.ones(2), np.zeros(8), np.zeros(10)]
    call_b = np.r_[np.ones(10), np.zeros(2), np.ones(8), np.zeros(10)]
    result = mcnemar_test(y, call_a, call_b)
    assert result.table.tolist() == [[10, 2], [8, 10]]
    assert result.method == "exact" and result.p_value == pytest.approx(0.109375, abs=1e-12)


def test_mcnemar_chi2_with_continuity_correction_on_known_table() -> None:
    # Agresti's approval table: discordant 150 vs 86; (|150 - 86| - 1)^2 / 236 = 16.818.
    a = np.r_[np.ones(794), np.ones(150), np.zeros(86), np.zeros(570)]
    b = np.r_[np.ones(794), np.zeros(150), np.ones(86), np.zeros(570)]
    result = mcnemar_test(None, a, b, compare="call")
    assert result.method == "chi2-cc"
    assert result.statistic == pytest.approx(63**2 / 236)
    assert result.p_value == pytest.approx(chi2.sf(63**2 / 236, df=1))
    assert mcnemar_test(np.ones(5), np.ones(5), np.ones(5)).p_value == 1.0  # nothing discordant


def test_clustered_mcnemar_equals_a_hand_computation() -> None:
    """Durkalski (2003) on 4 patients: (b_k - c_k) / n_k = 1, -1, 1/3, 0 gives X^2 = (1/3)^2 / (19/9) = 1/19."""
    y = np.ones(8, dtype=int)
    patients = np.array(["A", "A", "B", "C", "C", "C", "D", "D"])
    call_a = np.array([1, 1, 0, 1, 1, 0, 1, 0])
    call_b = np.array([0, 0, 1, 0, 1, 0, 1, 0])
    result = clustered_mcnemar_test(y, call_a, call_b, patients)
    assert result.method == "durkalski"
    assert (result.a_only, result.b_only) == (3, 1)
    assert result.statistic == pytest.approx(1 / 19)
    assert result.p_value == pytest.approx(chi2.sf(1 / 19, df=1))
    assert clustered_mcnemar_test(y, call_a, call_a, patients).p_value == 1.0


def test_clustered_mcnemar_is_mcnemar_with_one_scan_per_patient() -> None:
    y = np.ones(30, dtype=int)
    call_a = np.r_[np.ones(10), np.ones(2), np.zeros(8), np.zeros(10)]
    call_b = np.r_[np.ones(10), np.zeros(2), np.ones(8), np.zeros(10)]
    clustered = clustered_mcnemar_test(y, call_a, call_b, np.arange(30))
    plain = mcnemar_test(y, call_a, call_b)
    assert (clustered.method, clustered.p_value) == (plain.method, plain.p_value)


def test_patient_clustered_tests_table() -> None:
    y, patient_ids, scores = cohort(n_patients=20, scans_per_patient=3, seed=6)
    thresholds = dict.fromkeys(scores, 0.5)
    clustered = auc_table(y, scores, "model", patient_ids=patient_ids)
    naive = auc_table(y, scores, "model")
    assert np.allclose(clustered["auc"], naive["auc"])
    assert ((clustered["high"] - clustered["low"]) != (naive["high"] - naive["low"])).any()
    tests = mcnemar_tests(y, scores, thresholds, "model", patient_ids=patient_ids)
    assert set(tests["method"]) == {"durkalski"}


# --- agreement -----------------------------------------------------------------------------------


def test_agreement_matrices() -> None:
    rng = np.random.default_rng(9)
    calls = {f"R{k}": (rng.random(50) < 0.5).astype(int) for k in range(4)}
    kappa = cohen_kappa_matrix(calls)
    agree = percent_agreement(calls)
    for a in calls:
        for b in calls:
            if a != b:
                # Cohen's kappa by its definition: (observed - chance agreement) / (1 - chance).
                observed = np.mean(calls[a] == calls[b])
                pa, pb = np.mean(calls[a]), np.mean(calls[b])
                chance = pa * pb + (1 - pa) * (1 - pb)
                assert kappa.loc[a, b] == pytest.approx((observed - chance) / (1 - chance), abs=1e-12)
            assert agree.loc[a, b] == pytest.approx(np.mean(calls[a] == calls[b]))
    assert np.allclose(np.diag(kappa), 1) and np.allclose(np.diag(agree), 1)
    assert kappa.equals(kappa.T)


def test_fleiss_kappa_on_reference_example() -> None:
    # 8 raters, 2 subjects with category counts [7, 1] and [3, 5]: Fleiss' kappa 0.161905
    # (Randolph's online calculator, also in statsmodels' tests).
    frame = pd.DataFrame([[0] * 7 + [1], [0] * 3 + [1] * 5], columns=[f"Clinician {k}" for k in range(1, 9)])
    assert fleiss_kappa(frame) == pytest.approx(0.161905, abs=6e-6)


# --- calibration and decision curves ---------------------------------------------------------------


def test_calibration_slope_one_intercept_zero_when_calibrated() -> None:
    rng = np.random.default_rng(12)
    p = rng.beta(2, 3, 20000)
    y = (rng.random(p.size) < p).astype(int)
    fit = calibration_slope_intercept(y, p)
    assert fit.slope == pytest.approx(1.0, abs=0.06)
    assert fit.intercept == pytest.approx(0.0, abs=0.04)
    assert fit.brier == pytest.approx(np.mean((p - y) ** 2))
    # Over-confident predictions (logit doubled) give a slope near 1/2.
    logit = np.log(p / (1 - p))
    assert calibration_slope_intercept(y, 1 / (1 + np.exp(-2 * logit))).slope == pytest.approx(0.5, abs=0.04)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_table_matches_sklearn(strategy: str) -> None:
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(13)
    p = rng.random(300) ** 2
    y = (rng.random(300) < p).astype(int)
    table = calibration_table(y, p, n_bins=8, strategy=strategy)
    observed, predicted = calibration_curve(y, p, n_bins=8, strategy=strategy)
    np.testing.assert_allclose(table["observed"], observed)
    np.testing.assert_allclose(table["mean_predicted"], predicted)
    assert table["n"].sum() == 300
    assert (
        (table["mean_predicted"] >= table["bin_low"]) & (table["mean_predicted"] <= table["bin_high"])
    ).all()


def test_net_benefit_treat_all_and_perfect_model() -> None:
    y = np.r_[np.ones(20), np.zeros(11)].astype(int)
    pt = np.array([0.1, 0.2, 0.5])
    expected_all = 20 / 31 - 11 / 31 * pt / (1 - pt)
    np.testing.assert_allclose(net_benefit_treat_all(y, pt), expected_all)
    # Treating everyone is what a model scoring every scan 1 does.
    np.testing.assert_allclose(net_benefit(y, np.ones(31), pt), expected_all)
    # A perfect model's net benefit is the prevalence at every threshold.
    np.testing.assert_allclose(net_benefit(y, y.astype(float), pt), 20 / 31)
    curve = decision_curve(y, {"ctnet": y * 0.8 + 0.1}, pt)
    assert set(curve["strategy"]) == {"ctnet", "treat all", "treat none"}
    assert (curve.loc[curve["strategy"] == "treat none", "net_benefit"] == 0).all()


# --- convenience layer -----------------------------------------------------------------------------


def test_format_ci() -> None:
    assert format_ci(20 / 31, 0.521, 0.75) == "64.52 (52.10–75.00)"
    assert format_ci(0.7314, 0.6301, 0.8326, percent=False, digits=3) == "0.731 (0.630–0.833)"
    assert format_ci(np.nan, np.nan, np.nan) == "–"
    assert format_ci(0.5, np.nan, np.nan) == "50.00 (–)"


def test_tables_from_prediction_and_reader_sheets() -> None:
    y, patient_ids, scores = cohort(n_patients=20, scans_per_patient=3, seed=6)
    scan_ids = [f"{p}_scan{k % 3 + 1}" for k, p in enumerate(patient_ids)]
    base = pd.DataFrame({"patient_id": patient_ids, "scan_id": scan_ids, "y_true": y})
    split = np.where(np.arange(y.size) < 45, "test", "val")
    predictions = {
        name: base.assign(split=split, p_ht=scores[source], threshold=t).sample(frac=1, random_state=1)
        for name, source, t in [("ctnet", "model", 0.45), ("baseline", "baseline", 0.5)]
    }
    readers = pd.concat(
        [
            pd.DataFrame(
                {"scan_id": scan_ids, "reader": f"Clinician {k}", "p_ht": np.roll(scores["reader"], k)}
            )
            for k in (1, 2)
        ]
    )
    scans, rater_scores, thresholds = rater_inputs(predictions, readers, part="test")
    assert list(rater_scores) == ["ctnet", "baseline", "Clinician 1", "Clinician 2"]
    assert len(scans) == 45 and scans["scan_id"].is_monotonic_increasing
    assert thresholds == {"ctnet": 0.45, "baseline": 0.5, "Clinician 1": 0.5, "Clinician 2": 0.5}
    order = pd.Series(np.arange(y.size), index=scan_ids)[scans["scan_id"]].to_numpy()
    np.testing.assert_array_equal(rater_scores["ctnet"], scores["model"][order])
    np.testing.assert_array_equal(rater_scores["baseline"], scores["baseline"][order])
    np.testing.assert_array_equal(scans["y_true"], y[order])

    long = evaluate_raters(scans["y_true"], scans["patient_id"], rater_scores, thresholds, n_bootstrap=100)
    assert list(long.columns) == ["rater", "metric", "value", "low", "high", "n_undefined"]
    assert len(long) == 4 * len(METRICS)
    assert ((long["low"] <= long["value"] + 1e-12) & (long["value"] <= long["high"] + 1e-12)).all()
    wide = format_metrics_table(long)
    assert wide.shape == (4, len(METRICS)) and list(wide.index) == list(rater_scores)

    aucs = auc_table(scans["y_true"], rater_scores, reference="ctnet")
    assert aucs.loc[aucs["rater"] == "ctnet", "z"].isna().all() and aucs["p"].iloc[1:].between(0, 1).all()
    tests = mcnemar_tests(scans["y_true"], rater_scores, thresholds, reference="ctnet")
    assert list(tests["rater"]) == ["baseline", "Clinician 1", "Clinician 2"]
    agree, kappa, fleiss = agreement_tables(rater_scores, thresholds, readers=["Clinician 1", "Clinician 2"])
    assert agree.shape == kappa.shape == (4, 4)
    # Fleiss' kappa by its definition (Fleiss 1971), not by the function the code calls.
    calls = np.stack([rater_scores[r] >= 0.5 for r in ["Clinician 1", "Clinician 2"]], axis=1)
    n_raters = calls.shape[1]
    counts = np.stack([(~calls).sum(axis=1), calls.sum(axis=1)], axis=1)
    per_scan = ((counts**2).sum(axis=1) - n_raters) / (n_raters * (n_raters - 1))
    shares = counts.sum(axis=0) / counts.sum()
    expected = (per_scan.mean() - (shares**2).sum()) / (1 - (shares**2).sum())
    assert fleiss == pytest.approx(expected, abs=1e-12)

    with pytest.raises(ValueError, match="has not read scan P00_scan1"):
        rater_inputs(predictions, readers.iloc[1:], part="test")
    with pytest.raises(ValueError, match="lacks 1 scan"):
        rater_inputs(predictions, readers[readers["scan_id"] != "P00_scan1"], part="test")
    with pytest.raises(ValueError, match="differs"):
        rater_inputs({**predictions, "bad": predictions["ctnet"].assign(y_true=1)}, readers, part="test")

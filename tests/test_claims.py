"""Tests of the claims' tests: every verdict agrees with its own estimate, interval and p (issue 21).

Constructed data with known answers for the new tests (non-inferiority, matched operating points,
the per-scan attention statistic, the interval-consistent bootstrap p), and every row of the claims
table checked on constructed runs and on the tiny workflow's output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from htct.evaluate.bootstrap import percentile_ci, percentile_p_value
from htct.evaluate.operating_points import (
    fpr_at_sensitivity,
    matched_operating_points,
    sensitivity_at_fpr,
    weighted_roc,
)
from htct.paper.claims import (
    AUC_UNIT,
    DOES_NOT_HOLD,
    ENRICHMENT_UNIT,
    HOLDS,
    NONINFERIORITY,
    POINTS_UNIT,
    UNDECIDED,
    attention_claim,
    claims_table,
    paper_claims,
    verdict,
    verdict_agrees,
)


def _test_scans(
    model_noise: float,
    reader_noise: float,
    seed: int = 0,
    n_patients: int = 80,
    model_shift: float = 0.0,
    all_ht_baseline: bool = False,
) -> pd.DataFrame:
    """A test_scans.tsv of constructed raters: 1-2 scans per patient, logit = 3 (y - 1/2) + noise.

    ``model_shift`` moves CTNet's logits (its threshold) without changing its ranking;
    ``all_ht_baseline`` makes the baseline call every scan HT (sensitivity 100%, as in the paper's
    table 3).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        label = int(p % 2)
        for k in range(1 + int(rng.random() < 0.3)):
            rows.append({"scan_id": f"P{p:03d}_scan{k + 1}", "patient_id": f"P{p:03d}", "y_true": label})
    scans = pd.DataFrame(rows)
    y = scans["y_true"].to_numpy()
    raters = {"ctnet": model_noise, "baseline": 2.0, **{f"Clinician {i}": reader_noise for i in range(1, 5)}}
    for rater, noise in raters.items():
        shift = model_shift if rater == "ctnet" else 0.0
        p = 1 / (1 + np.exp(-(3 * (y - 0.5) + shift + rng.normal(0, noise, y.size))))
        if rater == "baseline" and all_ht_baseline:
            p = np.full(y.size, 0.9)
        scans[f"p_{rater}"] = p
        scans[f"call_{rater}"] = (p >= 0.5).astype(int)
    return scans


# --- the p-value that agrees with the percentile interval ---------------------------------------------


def test_percentile_p_value_agrees_with_the_percentile_interval() -> None:
    rng = np.random.default_rng(0)
    for _ in range(400):
        size = int(rng.integers(1, 300))
        # rounded values: ties at and around 0, as bootstrap differences of counts have
        values = np.round(rng.normal(rng.normal(0, 1.5), 1, size), int(rng.integers(0, 3)))
        for alpha in (0.05, 0.1, 0.2):
            low, high = percentile_ci(values[:, None], alpha)
            assert (percentile_p_value(values) < alpha) == (low[0] > 0 or high[0] < 0)
            assert (percentile_p_value(values, side="greater") < alpha / 2) == (low[0] > 0)


def test_percentile_p_value_known_values() -> None:
    values = np.arange(-2.0, 99.0)  # 101 values, 0 at position 2 of 0..100
    assert percentile_p_value(values, side="greater") == pytest.approx(0.02)
    assert percentile_p_value(values) == pytest.approx(0.04)
    assert percentile_p_value(np.ones(50)) == 0.0 and percentile_p_value(-np.ones(50)) == 0.0
    assert np.isnan(percentile_p_value(np.full(5, np.nan)))
    with pytest.raises(ValueError, match="side"):
        percentile_p_value(values, side="less")


# --- matched operating points -------------------------------------------------------------------------


def test_roc_reading_on_a_hand_computed_curve() -> None:
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1])
    fpr, tpr = weighted_roc(y, scores, np.ones((1, 8)))
    assert fpr[0].tolist() == [0, 0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 1]
    assert tpr[0].tolist() == [0, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1, 1]
    assert sensitivity_at_fpr(fpr[0], tpr[0], 0.25) == 0.75  # the best point of a vertical step
    assert sensitivity_at_fpr(fpr[0], tpr[0], 0.375) == 0.75  # on a horizontal stretch
    assert fpr_at_sensitivity(fpr[0], tpr[0], 0.5) == 0.0  # the smallest fpr reaching 0.5
    assert fpr_at_sensitivity(fpr[0], tpr[0], 0.625) == 0.25  # on a vertical stretch
    assert fpr_at_sensitivity(fpr[0], tpr[0], 1.0) == 0.5
    # tied scores of an HT and a non-HT scan: a diagonal segment, read linearly
    fpr, tpr = weighted_roc([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1], np.ones((1, 4)))
    assert fpr[0].tolist() == [0, 0, 0.5, 1] and tpr[0].tolist() == [0, 0.5, 1, 1]
    assert sensitivity_at_fpr(fpr[0], tpr[0], 0.2) == pytest.approx(0.7)
    assert fpr_at_sensitivity(fpr[0], tpr[0], 0.75) == pytest.approx(0.25)


def test_matched_operating_points_of_a_perfect_model() -> None:
    y = np.array([1, 0] * 20)
    patients = [f"P{i:02d}" for i in range(40)]
    model = y * 0.8 + 0.1  # ranks every HT scan above every non-HT scan: sensitivity 1 at any specificity
    reader = np.array([1, 0, 0, 0] * 10)  # sensitivity 0.5, specificity 1.0
    other = np.array([1, 1] * 20)  # sensitivity 1.0, specificity 0.0
    points = matched_operating_points(y, patients, model, {"a": reader, "b": other}, 300, 1).set_index(
        "quantity"
    )
    sens = points.loc["sensitivity_at_reader_specificity"]
    assert sens["matched_at"] == pytest.approx(0.5)  # the readers' mean specificity
    assert sens["readers_mean"] == pytest.approx(0.75) and sens["estimate"] == 1.0
    assert sens["difference"] == pytest.approx(0.25) and sens["difference_low"] > 0 and sens["p"] < 0.05
    spec = points.loc["specificity_at_reader_sensitivity"]
    assert spec["matched_at"] == pytest.approx(0.75)  # the readers' mean sensitivity
    assert spec["readers_mean"] == pytest.approx(0.5) and spec["estimate"] == 1.0
    assert spec["difference"] == pytest.approx(0.5)
    # a model that ranks at random does not beat the readers at their operating point
    noise = np.random.default_rng(3).random(40)
    flat = matched_operating_points(y, patients, noise, {"a": reader, "b": reader}, 300, 1)
    assert (flat["difference_low"] < 0).all()


def test_threshold_shift_does_not_move_the_matched_operating_point() -> None:
    """Sensitivity and specificity at CTNet's own threshold change with its threshold; its ROC does not."""
    low, high = (
        paper_claims(_test_scans(1.0, 1.5, model_shift=shift), ["ctnet", "baseline"], 200, 1)[0].set_index(
            "claim_id"
        )
        for shift in (-2.0, 2.0)
    )
    for claim in ("sensitivity_at_clinician_specificity", "specificity_at_clinician_sensitivity"):
        assert low.loc[claim, "estimate"] == pytest.approx(high.loc[claim, "estimate"])
    assert (
        low.loc["sensitivity_vs_every_clinician", "estimate"]
        < high.loc["sensitivity_vs_every_clinician", "estimate"]
    )


# --- non-inferiority ------------------------------------------------------------------------------------


def test_noninferiority_verdict_against_the_margin() -> None:
    assert verdict(-0.04, 0.03, margin=0.05) == HOLDS  # superiority undecided, non-inferior
    assert verdict(-0.04, 0.03) == UNDECIDED
    assert verdict(-0.2, -0.06, margin=0.05) == DOES_NOT_HOLD
    assert verdict(-0.08, -0.01, margin=0.05) == UNDECIDED
    assert verdict(-0.08, -0.01) == DOES_NOT_HOLD


def test_neurologists_level_is_non_inferiority_beside_superiority() -> None:
    scans = _test_scans(model_noise=1.5, reader_noise=1.5, n_patients=200, seed=4)  # CTNet like a reader
    claims = paper_claims(scans, ["ctnet", "baseline"], 200, 1, noninferiority_margin=0.10)[0]
    rows = claims.set_index("claim_id")
    superiority, ni = rows.loc["auc_vs_clinician_average"], rows.loc["auc_noninferior_to_clinician_average"]
    assert ni["hypothesis"] == NONINFERIORITY and ni["margin"] == 0.10 and ni["unit"] == AUC_UNIT
    assert superiority["verdict"] == UNDECIDED and ni["verdict"] == HOLDS
    assert ni["estimate"] == superiority["estimate"] and ni["p"] < superiority["p"]
    assert ni["p"] < 0.025 and "margin 0.1" in ni["detail"]
    # a clearly worse model is shown inferior by more than a small margin
    worse = paper_claims(_test_scans(6.0, 0.3), ["ctnet", "baseline"], 200, 1, noninferiority_margin=0.02)[0]
    assert worse.set_index("claim_id").loc["auc_noninferior_to_clinician_average", "verdict"] == DOES_NOT_HOLD


# --- every row agrees with itself ------------------------------------------------------------------------

SCENARIOS = {
    "better": {"model_noise": 0.3, "reader_noise": 3.0},
    "worse": {"model_noise": 4.0, "reader_noise": 0.3},
    "alike": {"model_noise": 1.5, "reader_noise": 1.5},
    "high threshold": {"model_noise": 0.8, "reader_noise": 1.0, "model_shift": -3.0},
    "all-HT baseline": {"model_noise": 1.0, "reader_noise": 1.0, "all_ht_baseline": True},
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_claim_row_agrees_with_its_estimate_interval_and_p(scenario: str) -> None:
    claims, _ = paper_claims(_test_scans(**SCENARIOS[scenario]), ["ctnet", "baseline"], 300, 1)
    for _, row in claims.iterrows():
        assert verdict_agrees(row) == [], (scenario, row["claim_id"])
    assert claims["unit"].isin([AUC_UNIT, POINTS_UNIT, ENRICHMENT_UNIT]).all()


def test_contradicted_claims_do_not_hold() -> None:
    # CTNet with a high threshold: specific, not sensitive; and a baseline that calls every scan HT
    claims = paper_claims(
        _test_scans(0.8, 1.0, model_shift=-3.0, all_ht_baseline=True), ["ctnet", "baseline"], 300, 1
    )[0].set_index("claim_id")
    assert claims.loc["sensitivity_vs_baselines", "verdict"] == DOES_NOT_HOLD
    assert claims.loc["sensitivity_vs_every_clinician", "verdict"] == DOES_NOT_HOLD
    assert "fails on" in claims.loc["sensitivity_vs_every_clinician", "detail"]
    # ... while CTNet at a low threshold is less specific and less precise than the clinicians
    low = paper_claims(_test_scans(0.8, 1.0, model_shift=3.0), ["ctnet", "baseline"], 300, 1)[0]
    low = low.set_index("claim_id")
    assert low.loc["specificity_vs_every_clinician", "verdict"] == DOES_NOT_HOLD
    assert low.loc["ppv_vs_every_clinician", "verdict"] == DOES_NOT_HOLD


def test_low_visibility_claim_uses_the_scans_whose_infarct_is_not_visible() -> None:
    scans = _test_scans(0.3, 3.0)
    claim_id = "accuracy_vs_every_clinician_not_visible"
    undecided = paper_claims(scans, ["ctnet", "baseline"], 200, 1)[0].set_index("claim_id").loc[claim_id]
    assert undecided["verdict"] == UNDECIDED and "lesion visibility" in undecided["detail"]
    hidden = scans["scan_id"].str.endswith("scan1") & (scans["patient_id"].str[-1].astype(int) % 2 == 0)
    visibility = pd.DataFrame({"scan_id": scans["scan_id"], "visible": np.where(hidden, "False", "True")})
    row = paper_claims(scans, ["ctnet", "baseline"], 200, 1, visibility=visibility)[0].set_index("claim_id")
    row = row.loc[claim_id]
    n_hidden, n_patients = int(hidden.sum()), scans.loc[hidden, "patient_id"].nunique()
    assert row["detail"].startswith(f"{n_hidden} test scans of {n_patients} patients")
    assert row["verdict"] == HOLDS and verdict_agrees(row) == []
    # the estimate shown is CTNet's accuracy minus a clinician's on those scans alone
    subset = scans[hidden.to_numpy()]
    ctnet = (subset["call_ctnet"] == subset["y_true"]).mean()
    gaps = [ctnet - (subset[f"call_Clinician {i}"] == subset["y_true"]).mean() for i in range(1, 5)]
    assert min(abs(row["estimate"] - gap) for gap in gaps) < 1e-12


def test_published_aucs_of_the_discussion() -> None:
    """The Discussion's other studies (0.787, 0.68): CTNet's AUC minus each, with its bootstrap CI."""
    good = paper_claims(_test_scans(0.3, 1.0), ["ctnet", "baseline"], 200, 1)[0].set_index("claim_id")
    poor = paper_claims(_test_scans(20.0, 1.0, n_patients=300), ["ctnet", "baseline"], 200, 1)[0]
    poor = poor.set_index("claim_id")
    for claim_id, value in (("auc_above_clinical_data_model", 0.787), ("auc_above_clinical_scales", 0.68)):
        assert good.loc[claim_id, "verdict"] == HOLDS and poor.loc[claim_id, "verdict"] == DOES_NOT_HOLD
        auc = float(good.loc[claim_id, "detail"].split()[2])
        assert good.loc[claim_id, "estimate"] == pytest.approx(auc - value, abs=5e-4)
        assert f"{value:g}" in good.loc[claim_id, "paper_says"] and good.loc[claim_id, "unit"] == AUC_UNIT


def test_verdict_agrees_finds_inconsistent_rows() -> None:
    row = {"estimate": 0.1, "low": 0.02, "high": 0.2, "p": 0.01, "margin": 0.0, "hypothesis": "superiority"}
    assert verdict_agrees(row | {"verdict": HOLDS}) == []
    assert verdict_agrees(row | {"verdict": UNDECIDED}) != []
    assert verdict_agrees(row | {"verdict": HOLDS, "p": 0.3}) != []  # the attention row of issue 21
    assert verdict_agrees(row | {"verdict": HOLDS, "estimate": 0.5}) != []
    no_interval = {
        "estimate": 0.05,
        "low": np.nan,
        "high": np.nan,
        "margin": 0.0,
        "hypothesis": "superiority",
    }
    assert verdict_agrees(no_interval | {"p": 0.01, "verdict": HOLDS}) == []
    assert verdict_agrees(no_interval | {"p": 0.2, "verdict": HOLDS}) != []


def test_claims_table_states_units_per_row() -> None:
    claims = paper_claims(_test_scans(0.3, 3.0), ["ctnet", "baseline"], 200, 1)[0]
    table = claims_table(claims)
    assert list(table.columns[:3]) == ["Verdict", "CTNet minus comparator (95% CI)", "Unit"]
    by_id = dict(zip(claims["claim_id"], table["CTNet minus comparator (95% CI)"], strict=True))
    auc = claims.set_index("claim_id").loc["auc_vs_clinician_average"]
    assert by_id["auc_vs_clinician_average"].startswith(f"{auc['estimate']:+.3f}")
    sens = claims.set_index("claim_id").loc["sensitivity_vs_every_clinician"]
    assert by_id["sensitivity_vs_every_clinician"].startswith(f"{100 * sens['estimate']:+.1f}")
    assert "non-inferiority, margin 0.05 (one-sided p)" in set(table["Hypothesis"])


# --- attention, per scan, on the test scans ------------------------------------------------------------


def _attribution_scans(test_enrichment: list[float], val_enrichment: float = 20.0) -> pd.DataFrame:
    rows = []
    for i, value in enumerate(test_enrichment):
        rows.append({"patient_id": f"T{i // 2}", "part": "test", "enrichment": value})
    rows += [{"patient_id": f"V{i}", "part": "val", "enrichment": val_enrichment} for i in range(10)]
    table = pd.DataFrame(rows)
    table["method"], table["visible"] = "gradcam", True
    invisible = table.iloc[[0]].assign(enrichment=50.0, visible=False)  # an invisible infarct: left out
    other = table.iloc[[0]].assign(enrichment=50.0, method="occlusion")
    return pd.concat([table, invisible, other], ignore_index=True)


def test_attention_claim_uses_the_test_scans_per_scan() -> None:
    # enriched on every test scan: holds
    row = attention_claim(
        _attribution_scans([2.0, 3.0, 2.5, 4.0, 3.5, 2.2, 3.1, 2.8]), "ctnet", n_bootstrap=300
    )
    assert row["verdict"] == HOLDS and row["estimate"] == pytest.approx(
        np.mean([2, 3, 2.5, 4, 3.5, 2.2, 3.1, 2.8]) - 1
    )
    assert row["unit"] == ENRICHMENT_UNIT and "8 test scans of 4 patients" in row["detail"]
    # below chance on the test scans, however enriched the validation scans: does not hold
    row = attention_claim(
        _attribution_scans([0.0, 0.1, 0.2, 0.0, 0.3, 0.1, 0.0, 0.2]), "ctnet", n_bootstrap=300
    )
    assert row["verdict"] == DOES_NOT_HOLD and "below chance in 8" in row["detail"]
    assert verdict_agrees(row) == []
    # a few large values among many zeros: a ratio of sums could be high, the mean's interval says undecided
    row = attention_claim(
        _attribution_scans([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.0, 0.0]), "ctnet", n_bootstrap=300
    )
    assert row["verdict"] == UNDECIDED and verdict_agrees(row) == []


def test_attention_claim_without_per_scan_values_is_undecided() -> None:
    localisation = pd.DataFrame(
        [["ctnet", "full_head", "gradcam", "lesion_enrichment", 30, 3.0, 2.0, 4.0, 1.0, 0.01, "pass"]],
        columns=["model", "input", "method", "metric", "n_scans", "estimate", "lower", "upper", "chance"]
        + ["p_value", "verdict"],
    )
    row = attention_claim(None, "ctnet", localisation=localisation)
    assert row["verdict"] == UNDECIDED and "no per-scan attribution results" in row["detail"]
    assert "ratio of sums over 30 validation and test scans: 3" in row["detail"]
    row = attention_claim(_attribution_scans([2.0, 3.0]), "ctnet", method="integrated_gradients")
    assert row["verdict"] == UNDECIDED and "no test scan" in row["detail"]


# --- the tiny workflow's claims --------------------------------------------------------------------------


@pytest.mark.slow
def test_tiny_workflow_claims_agree_with_themselves(tiny_run) -> None:
    claims = pd.read_csv(tiny_run / "results/paper/claims.tsv", sep="\t")
    expected = {
        "auc_vs_clinician_average",
        "auc_noninferior_to_clinician_average",
        "sensitivity_at_clinician_specificity",
        "specificity_at_clinician_sensitivity",
        "specificity_vs_every_clinician",
        "ppv_vs_every_clinician",
        "sensitivity_vs_baselines",
        "accuracy_vs_every_clinician_not_visible",
        "auc_above_clinical_data_model",
        "attention_on_infarct",
    }
    assert expected <= set(claims["claim_id"])
    for _, row in claims.iterrows():
        assert verdict_agrees(row) == [], row["claim_id"]
    attention = claims.set_index("claim_id").loc["attention_on_infarct"]
    assert "on the test scans" in attention["test"]  # decided per scan on test scans, whatever the verdict

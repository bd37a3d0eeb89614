"""The clinical-only model, CTNet's late fusion with the clinical variables, the image-and-clinical
claims, and the results by treatment (issue 24)."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from htct.clinical import clinical_design, fit_clinical, fit_fusion, fusion_predictions
from htct.clinical.evaluate import ceiling_scores, image_clinical_claims, paired_auc_difference
from htct.evaluate.delong import delong_covariance
from htct.evaluate.subgroups import (
    TOO_FEW,
    auc_heterogeneity,
    auc_interaction,
    subgroup_metrics,
    treatment_groups,
)
from htct.synth import sample_cohort
from htct.tables.clinical import treatment_table, treatment_tidy


def _random_split(patient_ids: pd.Series, seed: int, test: float = 0.1, val: float = 0.2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    u = rng.random(len(patient_ids))
    part = np.where(u < test, "test", np.where(u < test + val, "val", "train"))
    return pd.DataFrame({"patient_id": patient_ids.to_numpy(), "part": part, "fold": -1})


@pytest.fixture(scope="module")
def large_cohort():
    """Tables only (no images) of a large synthetic cohort: the risk model's effects are known."""
    return sample_cohort(8000, seed=24)


def test_clinical_model_recovers_the_risk_models_effect_signs(large_cohort):
    clinical = large_cohort.clinical
    split = _random_split(clinical["patient_id"], seed=1)
    model, predictions = fit_clinical(clinical, split, large_cohort.scans[["scan_id", "patient_id"]])
    beta = model.coefficients
    # The risk model: +0.25 per decade, anticoagulant +0.9, thrombolytic +0.8, antiplatelet +0.2 (all
    # against none), sex none. Left-out image factors attenuate them, but the signs and order remain.
    assert beta["age_per_10y"] > 0.1
    assert beta["medication_anticoagulant"] > 0.2
    assert beta["medication_thrombolytic"] > 0.2
    assert beta["medication_thrombolytic"] > beta["medication_antiplatelet"] > 0
    assert abs(beta["male"]) < 0.15
    # Every validation and test scan predicted, none of the training ones; one threshold from validation.
    train_patients = set(split.loc[split["part"] == "train", "patient_id"])
    assert not set(predictions["patient_id"]) & train_patients
    assert set(predictions["split"]) == {"val", "test"}
    assert predictions["threshold"].nunique() == 1
    per_patient = predictions.groupby("patient_id")["p_ht"].nunique()
    assert (per_patient == 1).all()  # a patient's scans share the chart


def test_not_available_medication_is_its_own_category():
    sheet = pd.DataFrame(
        {
            "patient_id": ["a", "b", "c"],
            "age": [50, 60, 70],
            "sex": ["M", "F", "M"],
            "medication": ["none", "not_available", "thrombolytic"],
        }
    )
    design = clinical_design(sheet)
    assert design.loc["b", "medication_not_available"] == 1
    assert design.loc["b"].filter(like="medication_").sum() == 1
    assert design.loc["a"].filter(like="medication_").sum() == 0  # none is the reference
    assert design.loc["c", "age_per_10y"] == 7.0 and design.loc["c", "male"] == 1


def test_k_fold_split_gives_out_of_fold_validation_predictions(large_cohort):
    clinical = large_cohort.clinical.iloc[:1500]
    split = _random_split(clinical["patient_id"], seed=2, val=0.0)
    split["fold"] = np.where(split["part"] == "train", np.arange(len(split)) % 3, -1)
    model, predictions = fit_clinical(clinical, split, large_cohort.scans[["scan_id", "patient_id"]])
    val = predictions[predictions["split"] == "val"]
    assert set(val["patient_id"]) == set(split.loc[split["part"] == "train", "patient_id"])
    # Out of fold: a validation patient's prediction differs from the final model's.
    final = model.predict(clinical.set_index("patient_id").loc[val["patient_id"]].reset_index())
    assert not np.allclose(final.to_numpy(), val["p_ht"].to_numpy())


def _fusion_inputs(seed: int = 3, n_patients: int = 400):
    """CTNet-like and clinical-model-like predictions of val and test scans with a known truth."""
    rng = np.random.default_rng(seed)
    patients = [f"P{i:04d}" for i in range(n_patients)]
    sheet = pd.DataFrame(
        {
            "patient_id": patients,
            "age": rng.integers(30, 90, n_patients),
            "sex": rng.choice(["M", "F"], n_patients),
            "medication": rng.choice(["antiplatelet", "thrombolytic", "none", "anticoagulant"], n_patients),
        }
    )
    clinical_eta = 0.3 * (sheet["age"] - 60) / 10 + 0.9 * (sheet["medication"] == "thrombolytic")
    image_eta = rng.normal(0, 1.5, n_patients)
    label = (rng.random(n_patients) < 1 / (1 + np.exp(-(image_eta + clinical_eta)))).astype(int)
    sheet["label"] = label
    split = np.where(np.arange(n_patients) % 2 == 0, "val", "test")
    ctnet = pd.DataFrame(
        {
            "patient_id": patients,
            "scan_id": [f"{p}_scan1" for p in patients],
            "split": split,
            "y_true": label,
            "p_ht": 1 / (1 + np.exp(-(image_eta + rng.normal(0, 0.5, n_patients)))),
            "threshold": 0.5,
        }
    )
    clinical_predictions = ctnet.assign(p_ht=1 / (1 + np.exp(-clinical_eta.to_numpy())), threshold=0.4)
    return sheet, ctnet, clinical_predictions


def test_fusion_never_sees_test_data():
    sheet, ctnet, clinical_predictions = _fusion_inputs()
    model = fit_fusion(ctnet, clinical_predictions, sheet)
    assert set(model.fitted_on) == set(ctnet.loc[ctnet["split"] == "val", "scan_id"])
    # Scrambling every test score and label leaves the fit, the choice and the threshold unchanged.
    test = ctnet["split"] == "test"
    rng = np.random.default_rng(0)
    scrambled_ctnet = ctnet.copy()
    scrambled_ctnet.loc[test, "p_ht"] = rng.random(test.sum())
    scrambled_ctnet.loc[test, "y_true"] = 1 - ctnet.loc[test, "y_true"]
    scrambled_clinical = clinical_predictions.copy()
    scrambled_clinical.loc[test, "p_ht"] = rng.random(test.sum())
    scrambled_clinical.loc[test, "y_true"] = scrambled_ctnet.loc[test, "y_true"]
    again = fit_fusion(scrambled_ctnet, scrambled_clinical, sheet)
    pd.testing.assert_series_equal(model.coefficients, again.coefficients)
    pd.testing.assert_frame_equal(model.selection, again.selection)
    assert model.threshold == again.threshold and model.variant == again.variant


def test_fusion_is_chosen_by_validation_log_loss_and_adds_the_clinical_information():
    sheet, ctnet, clinical_predictions = _fusion_inputs()
    model = fit_fusion(ctnet, clinical_predictions, sheet)
    selection = model.selection.set_index("variant")
    candidates = selection.loc[["stacked", "full"]]
    assert model.variant == candidates["cv_log_loss"].idxmin()
    assert selection.loc[model.variant, "chosen"] and selection["chosen"].sum() == 1
    # The truth has a clinical part: fusion beats CTNet alone out of fold on the validation scans.
    assert selection.loc[model.variant, "cv_log_loss"] < selection.loc["ctnet_only", "cv_log_loss"]
    assert model.coefficients["ctnet_logit"] > 0
    table = fusion_predictions(model, ctnet, clinical_predictions, sheet)
    assert list(table.columns) == ["patient_id", "scan_id", "split", "y_true", "p_ht", "threshold"]
    assert table["threshold"].nunique() == 1
    val = table[table["split"] == "val"].set_index("scan_id")["p_ht"]
    pd.testing.assert_series_equal(val, model.out_of_fold.loc[val.index].rename("p_ht"), check_names=False)


def _scans(
    groups: dict[str, tuple[int, int]], seed: int = 0, noise_sd: float = 0.1
) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """One scan per patient; per group (n with HT, n without); CTNet's score is the label plus uniform
    noise of width ``noise_sd`` (perfect below 1) for thrombolysed patients, pure noise for the others."""
    rows = []
    for group, (n_pos, n_neg) in groups.items():
        for k in range(n_pos + n_neg):
            rows.append({"patient_id": f"{group}{k:03d}", "medication": group, "y_true": int(k < n_pos)})
    scans = pd.DataFrame(rows)
    scans["scan_id"] = scans["patient_id"] + "_scan1"
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, len(scans))
    perfect = scans["y_true"].to_numpy() + noise_sd * rng.random(len(scans))
    scores = {"ctnet": np.where(scans["medication"] == "thrombolytic", perfect, noise)}
    return scans, scores, scans[["patient_id", "medication"]]


def test_subgroup_table_on_constructed_data():
    scans, scores, sheet = _scans({"thrombolytic": (6, 6), "antiplatelet": (4, 20), "none": (8, 8)})
    groups = treatment_groups(sheet)
    long = subgroup_metrics(scans, scores, {"ctnet": 0.5}, groups, n_bootstrap=50)
    cells = long.set_index(["grouping", "group", "rater", "metric"])
    assert cells.loc[("medication", "thrombolytic", "ctnet", "auc"), "value"] == 1.0
    assert cells.loc[("medication", "thrombolytic", "ctnet", "sensitivity"), "value"] == 1.0
    assert cells.loc[("thrombolysis", "yes", "ctnet", "specificity"), "value"] == 1.0
    # 4 patients with HT: too few; its numbers are withheld.
    antiplatelet = long[(long["group"] == "antiplatelet")]
    assert not antiplatelet["carried"].any() and antiplatelet["value"].isna().all()
    assert antiplatelet["n_ht_patients"].iloc[0] == 4 and antiplatelet["n_non_ht_patients"].iloc[0] == 20
    # thrombolysis "no" = antiplatelet + none (+ anticoagulant): 12 with HT, 28 without.
    no = long[(long["grouping"] == "thrombolysis") & (long["group"] == "no")].iloc[0]
    assert (no["n_ht_patients"], no["n_non_ht_patients"], no["carried"]) == (12, 28, True)
    pretty = treatment_table(treatment_tidy(long))
    assert (pretty.loc[("Medication: antiplatelet", "CTNet"), "AUC"]) == TOO_FEW
    assert pretty.loc[("Medication: thrombolytic", "CTNet"), "AUC"].startswith("100.00")


def test_not_available_is_in_neither_thrombolysis_group():
    sheet = pd.DataFrame(
        {"patient_id": ["a", "b", "c"], "medication": ["not_available", "thrombolytic", "none"]}
    )
    groups = {(g, v): ids for g, v, ids in treatment_groups(sheet)}
    assert groups[("medication", "not_available")] == {"a"}
    assert groups[("thrombolysis", "yes")] == {"b"} and groups[("thrombolysis", "no")] == {"c"}


def test_heterogeneity_of_two_groups_is_the_square_of_the_z_test():
    rng = np.random.default_rng(5)
    y_a, y_b = rng.integers(0, 2, 80), rng.integers(0, 2, 90)
    s_a, s_b = y_a + rng.normal(0, 0.6, 80), y_b + rng.normal(0, 1.5, 90)
    auc_a, var_a = delong_covariance(y_a, s_a)
    auc_b, var_b = delong_covariance(y_b, s_b)
    z = (auc_a[0] - auc_b[0]) / np.sqrt(var_a[0, 0] + var_b[0, 0])
    q, df, p = auc_heterogeneity([auc_a[0], auc_b[0]], [var_a[0, 0], var_b[0, 0]])
    assert df == 1 and q == pytest.approx(z**2)
    assert p == pytest.approx(2 * norm.sf(abs(z)))
    q, df, p = auc_heterogeneity([0.7, 0.7, 0.7], [0.01, 0.02, 0.03])
    assert (q, df, p) == (pytest.approx(0.0), 2, pytest.approx(1.0))


def test_interaction_detects_a_difference_and_not_a_copy():
    groups = {"thrombolytic": (30, 30), "antiplatelet": (30, 30), "anticoagulant": (3, 3)}
    scans, scores, sheet = _scans(groups, noise_sd=1.3)  # AUC ~0.9 (a perfect AUC has no DeLong variance)
    groups = treatment_groups(sheet)
    table = auc_interaction(scans, scores, groups, ["ctnet"]).set_index("grouping")
    medication = table.loc["medication"]
    assert medication["groups_tested"] == "antiplatelet, thrombolytic"  # the design's order
    assert medication["groups_left_out"] == "anticoagulant"
    assert medication["p"] < 0.001  # near-perfect in one group, noise in the other
    # Two groups with the same scans (other patients): AUCs equal, Q = 0, p = 1.
    copy = scans[scans["medication"] == "antiplatelet"].copy()
    copy["patient_id"] = "T" + copy["patient_id"]
    copy["medication"] = "thrombolytic"
    both = pd.concat([scans[scans["medication"] == "antiplatelet"], copy], ignore_index=True)
    noise = scores["ctnet"][(scans["medication"] == "antiplatelet").to_numpy()]
    same = auc_interaction(
        both, {"ctnet": np.concatenate([noise, noise])}, treatment_groups(both), ["ctnet"]
    ).set_index("grouping")
    assert same.loc["medication", "statistic"] == pytest.approx(0.0)
    assert same.loc["medication", "p"] == pytest.approx(1.0)


def test_adds_to_claims_on_constructed_scores():
    rng = np.random.default_rng(9)
    n = 300
    chart, scan = rng.normal(0, 1, n), rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * chart + 2 * scan)))).astype(int)
    scans = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], "y_true": y})
    scores = {"clinical": chart, "ctnet": scan, "ctnet_clinical": chart + scan}
    claims = image_clinical_claims(scans, scores).set_index("claim_id")
    assert list(claims.index) == [
        "scan_adds_to_clinical",
        "clinical_adds_to_scan",
    ]  # no ceilings: no ceiling claims
    assert (claims["verdict"] == "holds").all()
    assert (claims["low"] > 0).all()
    # The fusion adds nothing when it is the scan alone.
    same = image_clinical_claims(scans, scores | {"ctnet_clinical": scan + 1e-9 * chart}).set_index(
        "claim_id"
    )
    assert same.loc["clinical_adds_to_scan", "verdict"] != "holds"
    direct = paired_auc_difference(y, chart + scan, chart, scans["patient_id"].to_numpy())
    assert claims.loc["scan_adds_to_clinical", "estimate"] == pytest.approx(direct["estimate"])


def test_ceilings_come_from_the_truth_files(tmp_path):
    scans = pd.DataFrame({"scan_id": ["a_scan1", "a_scan2", "b_scan1"], "patient_id": ["a", "a", "b"]})
    pd.DataFrame({"scan_id": ["a_scan1", "a_scan2", "b_scan1"], "p_image_scan": [0.1, 0.2, 0.3]}).to_csv(
        tmp_path / "scans.tsv", sep="\t", index=False
    )
    pd.DataFrame({"patient_id": ["a", "b"], "p_true": [0.4, 0.9]}).to_csv(
        tmp_path / "patients.tsv", sep="\t", index=False
    )
    ceilings = ceiling_scores(scans, tmp_path)
    np.testing.assert_allclose(ceilings["ceiling_image"], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(ceilings["ceiling_image_clinical"], [0.4, 0.4, 0.9])
    assert ceiling_scores(scans, None) == {}


@pytest.mark.slow
def test_tiny_run_has_the_clinical_models_and_tables(tiny_run):
    ids = {"patient_id": str, "scan_id": str}
    ctnet = pd.read_csv(tiny_run / "results/predictions/ctnet.tsv", sep="\t", dtype=ids)
    for model in ("clinical", "ctnet_clinical"):
        table = pd.read_csv(tiny_run / f"results/predictions/{model}.tsv", sep="\t", dtype=ids)
        assert list(table.columns) == list(ctnet.columns)
        pd.testing.assert_frame_equal(
            table[["scan_id", "split", "y_true"]].sort_values("scan_id").reset_index(drop=True),
            ctnet[["scan_id", "split", "y_true"]].sort_values("scan_id").reset_index(drop=True),
        )
        threshold = json.loads((tiny_run / f"results/models/{model}/threshold.json").read_text())
        assert threshold["threshold"] == pytest.approx(table["threshold"].iloc[0])
    fusion = json.loads((tiny_run / "results/models/ctnet_clinical/threshold.json").read_text())
    assert fusion["variant"] in ("stacked", "full")
    table = pd.read_csv(tiny_run / "results/tables/image_clinical.csv")
    assert table["synthetic"].all()
    assert set(table["Rater"]) >= {"CTNet", "Clinical variables (logistic)", "CTNet + clinical (late fusion)"}
    assert table.loc[table["Rater"].str.startswith("Ceiling"), "Rater"].nunique() == 2
    claims = pd.read_csv(tiny_run / "results/tables/image_clinical_claims.csv")
    adds = claims.set_index("claim_id").loc[["scan_adds_to_clinical", "clinical_adds_to_scan"]]
    assert set(adds["verdict"]) <= {"holds", "does not hold", "undecided"}
    treatment = pd.read_csv(tiny_run / "results/tables/treatment.csv")
    # The tiny test set (8 patients) carries no group: every group says so instead of a number.
    assert not treatment["carried"].any() and treatment["estimate"].isna().all()
    for stem in ("image_clinical", "image_clinical_claims", "treatment", "treatment_interaction"):
        assert "SYNTHETIC COHORT" in (tiny_run / f"results/tables/{stem}.html").read_text()


def test_own_cohort_without_truth_or_readers_has_no_ceilings_and_no_clinicians():
    from htct.clinical.evaluate import evaluate_image_clinical
    from htct.tables.clinical import image_clinical_table, image_clinical_tidy

    sheet, ctnet, clinical_predictions = _fusion_inputs(seed=4)
    model = fit_fusion(ctnet, clinical_predictions, sheet)
    predictions = {
        "clinical": clinical_predictions,
        "ctnet": ctnet,
        "ctnet_clinical": fusion_predictions(model, ctnet, clinical_predictions, sheet),
    }
    out = evaluate_image_clinical(predictions, None, sheet, None, n_bootstrap=50)
    assert set(out["metrics"]["rater"]) == {"clinical", "ctnet", "ctnet_clinical"}
    assert list(out["claims"]["claim_id"]) == ["scan_adds_to_clinical", "clinical_adds_to_scan"]
    table = image_clinical_table(image_clinical_tidy(out["metrics"]))
    assert list(table.index) == ["Clinical variables (logistic)", "CTNet", "CTNet + clinical (late fusion)"]
    assert list(table.columns)[-2:] == ["Calibration slope", "Calibration intercept"]
    # 200 test patients: the medication groups and thrombolysis yes / no carry numbers and are tested.
    interaction = out["interaction"].set_index(["grouping", "rater"])
    assert interaction.loc[("thrombolysis", "ctnet"), "groups_tested"] == "yes, no"
    assert interaction.loc[("thrombolysis", "ctnet"), "df"] == 1
    assert 0 <= interaction.loc[("medication", "ctnet"), "p"] <= 1

"""Counterfactual scans (htct.synth.counterfactual) and the model-side logit changes (htct.attribution)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import binary_dilation

from htct.attribution.counterfactual import delta_table, summarise, summary_table, uses_factor
from htct.dicom import convert_tree
from htct.errors import HTCTInputError
from htct.preprocess import build_arrays, build_arrays_like
from htct.synth import generate_cohort, risk, sample_cohort
from htct.synth.counterfactual import factor_present, generate_counterfactuals, oracle_counterfactual
from htct.synth.generate import render_axial_series

MATRIX = 64
N_PATIENTS = 6


def _seed() -> int:
    """First seed whose small cohort has a visible infarct, an artery sign, leukoaraiosis and a patient
    without the artery sign, each among its first-scan kept 5 mm series."""
    for seed in range(300):
        scans = sample_cohort(N_PATIENTS, seed).scans
        if scans["visible"].any() and scans["hyperdense_artery"].any() and (scans["leukoaraiosis"] > 0).any():
            if (scans["hyperdense_artery"] == 0).any():
                return seed
    raise AssertionError("no seed below 300 gives a varied cohort")


SEED = _seed()


@pytest.fixture(scope="module")
def cohort():
    return sample_cohort(N_PATIENTS, SEED)


def _kept_series(cohort, scan_id: str) -> pd.Series:
    series = cohort.series
    return series[(series["scan_id"] == scan_id) & (series["kind"] == "axial") & series["kept"]].iloc[0]


def _render(cohort, scan: pd.Series, remove: str | None) -> tuple[np.ndarray, np.ndarray]:
    patient = cohort.patients.set_index("patient_id").loc[scan["patient_id"]]
    hu, lesion = render_axial_series(
        patient, scan, _kept_series(cohort, scan["scan_id"]), SEED, MATRIX, remove=remove
    )
    return hu, lesion.astype(bool)  # render_series gives a uint8 mask


def test_removing_the_infarct_changes_only_the_infarct(cohort) -> None:
    scan = cohort.scans[cohort.scans["visible"]].iloc[0]
    original, lesion = _render(cohort, scan, None)
    counterfactual, lesion_again = _render(cohort, scan, "infarct")
    np.testing.assert_array_equal(lesion, lesion_again)  # same head: the mask does not move
    changed = original != counterfactual
    assert changed.any()
    # A slice averages three planes across its 5 mm, so the infarct also shows in the slices next to
    # the mask's (evaluated at slice centres), one voxel wider in-plane at most; nowhere else.
    near_lesion = lesion.copy()
    near_lesion[1:] |= lesion[:-1]
    near_lesion[:-1] |= lesion[1:]
    near_lesion = binary_dilation(near_lesion, structure=np.ones((1, 3, 3), dtype=bool))
    assert not (changed & ~near_lesion).any()
    difference = (counterfactual.astype(float) - original)[lesion]
    assert np.median(difference) == pytest.approx(scan["lesion_hu_drop"], abs=1.0)
    assert (counterfactual.astype(float) - original).min() >= -0.5  # the infarct only darkens


def test_removing_the_artery_sign_changes_only_a_thin_bright_tube(cohort) -> None:
    scan = cohort.scans[cohort.scans["hyperdense_artery"] == 1].iloc[0]
    original, _ = _render(cohort, scan, None)
    counterfactual, _ = _render(cohort, scan, "hyperdense_artery")
    changed = original != counterfactual
    assert 0 < changed.sum() < 0.002 * changed.size
    # A hyperdense (+75 HU) artery becomes a normal one (+45 HU): only brighter voxels go darker.
    assert (original.astype(float) - counterfactual)[changed].min() > 0
    # The M1 segment: a horizontal ~3 mm tube up to 40 mm long, so one or two 5 mm slices and at most
    # ~40 mm of one hemisphere in-plane (it is on the infarct side only).
    k, j, i = np.nonzero(changed)
    assert len(np.unique(k)) <= 2
    pixel_mm = float(scan["fov_mm"]) / MATRIX
    assert (i.max() - i.min() + 1) * pixel_mm <= 45


def test_removing_leukoaraiosis_only_brightens_periventricular_white_matter(cohort) -> None:
    scan = cohort.scans[cohort.scans["leukoaraiosis"] > 0].iloc[0]
    original, _ = _render(cohort, scan, None)
    counterfactual, _ = _render(cohort, scan, "leukoaraiosis")
    changed = original != counterfactual
    assert changed.any()
    assert (counterfactual.astype(float) - original)[changed].min() > 0
    # Brain tissue (white matter, noise SD 4-6 HU), never bone or air.
    assert np.all((original[changed] > -20) & (original[changed] < 70))


def test_a_factor_that_is_absent_leaves_the_scan_unchanged(cohort) -> None:
    scan = cohort.scans[cohort.scans["hyperdense_artery"] == 0].iloc[0]
    original, _ = _render(cohort, scan, None)
    counterfactual, _ = _render(cohort, scan, "hyperdense_artery")
    np.testing.assert_array_equal(original, counterfactual)
    with pytest.raises(ValueError, match="remove must be"):
        _render(cohort, scan, "skull")


def test_oracle_change_is_the_risk_models(cohort) -> None:
    scans = cohort.scans
    model = risk.risk_model(risk.PAPER_DESIGN)
    z = risk.z_volume_from_ml(scans["lesion_volume_ml"])
    hda, grade, visible = scans["hyperdense_artery"], scans["leukoaraiosis"], scans["visible"].to_numpy()
    # Without the infarct the oracle sees the artery sign and leukoaraiosis only.
    np.testing.assert_allclose(
        oracle_counterfactual(scans, "infarct", model), model.p_image_without_volume(hda, grade)
    )
    expected = np.where(
        visible, model.p_image(z, 0, grade), model.p_image_without_volume(np.zeros(len(scans)), grade)
    )
    np.testing.assert_allclose(oracle_counterfactual(scans, "hyperdense_artery", model), expected)
    for factor in ("infarct", "hyperdense_artery", "leukoaraiosis"):
        counterfactual = oracle_counterfactual(scans, factor, model)
        absent = ~factor_present(scans, factor).to_numpy()
        # Where the factor is not in the image, the counterfactual is the scan itself.
        np.testing.assert_allclose(
            counterfactual[absent], scans["p_image_scan"].to_numpy()[absent], rtol=1e-9
        )
    # Removing the artery sign or leukoaraiosis can only lower the risk (both raise it).
    present = factor_present(scans, "hyperdense_artery").to_numpy()
    assert np.all(
        oracle_counterfactual(scans, "hyperdense_artery", model)[present] < scans["p_image_scan"][present]
    )


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, Path]:
    """A tiny synthetic cohort, converted and preprocessed, and its artery-free counterfactual arrays."""
    root = tmp_path_factory.mktemp("counterfactual")
    generate_cohort(root / "cohort", n_patients=N_PATIENTS, seed=SEED, matrix=MATRIX, n_readers=2)
    convert_tree(
        root / "cohort/dicom",
        root / "cohort/clinical.csv",
        root / "nifti",
        root / "qc.tsv",
        root / "scans.tsv",
    )
    build_arrays(root / "scans.tsv", root / "arrays", size=32)
    patients = pd.read_csv(root / "cohort/clinical.csv", dtype={"patient_id": str})["patient_id"]
    out = root / "cf"
    generate_counterfactuals(
        out / "dicom",
        out / "clinical.csv",
        out / "oracle.tsv",
        "hyperdense_artery",
        patients,
        root / "cohort/truth",
        n_patients=N_PATIENTS,
        seed=SEED,
        matrix=MATRIX,
        n_readers=2,
    )
    convert_tree(out / "dicom", out / "clinical.csv", out / "nifti", out / "qc.tsv", out / "scans.tsv")
    build_arrays_like(out / "scans.tsv", root / "arrays", out / "arrays")
    return {"root": root, "cf": out}


def test_counterfactual_arrays_keep_scan_ids_and_unchanged_scans(converted) -> None:
    root, out = converted["root"], converted["cf"]
    ids = {"scan_id": str, "patient_id": str}
    original = pd.read_csv(root / "arrays/index.tsv", sep="\t", dtype=ids)
    index = pd.read_csv(out / "arrays/index.tsv", sep="\t", dtype=ids)
    assert set(index["scan_id"]) == set(original["scan_id"])  # same studies, same ranks, same IDs
    oracle = pd.read_csv(out / "oracle.tsv", sep="\t", dtype=ids).set_index("scan_id")
    volumes = np.load(root / "arrays/volumes.npy")
    counterfactual = np.load(out / "arrays/volumes.npy")
    for row in index.itertuples():
        same = np.array_equal(volumes[row.reference_row], counterfactual[row.row])
        # Scans without the sign are re-rendered identically and cut with the same crop: equal arrays.
        assert same == (not oracle.loc[row.scan_id, "present"]), row.scan_id
    masks = np.load(root / "arrays/brain_mask.npy")
    np.testing.assert_array_equal(np.load(out / "arrays/brain_mask.npy"), masks[index["reference_row"]])


def test_counterfactuals_refuse_other_cohort_settings(converted, tmp_path) -> None:
    with pytest.raises(HTCTInputError, match="rerun rule synth_cohort"):
        generate_counterfactuals(
            tmp_path / "dicom",
            tmp_path / "clinical.csv",
            tmp_path / "oracle.tsv",
            "infarct",
            ["HT0001"],
            converted["root"] / "cohort/truth",
            n_patients=N_PATIENTS,
            seed=SEED + 1,
            matrix=MATRIX,
        )


def test_delta_table_and_summary() -> None:
    oracle = pd.DataFrame(
        {
            "scan_id": ["a", "b", "c", "d"],
            "patient_id": ["p1", "p1", "p2", "p3"],
            "factor": "infarct",
            "present": [True, True, True, False],
            "p_image_scan": [0.8, 0.6, 0.3, 0.5],
            "p_image_scan_counterfactual": [0.4, 0.5, 0.4, 0.5],
        }
    )
    index = pd.DataFrame({"row": [0, 1, 2, 3], "scan_id": ["a", "b", "c", "d"]})
    table = delta_table(oracle, index, [1.0, 0.5, -0.5, 0.0], [-1.0, 0.0, 0.0, 0.0], "ctnet", "full_head")
    assert list(table["scan_id"]) == ["a", "b", "c"]  # only scans showing the factor
    np.testing.assert_allclose(table["delta_logit"], [-2.0, -0.5, 0.5])
    np.testing.assert_allclose(table["oracle_delta_logit"][0], np.log(0.4 / 0.6) - np.log(0.8 / 0.2))
    summary = summarise(table, n_bootstrap=200, seed=1).iloc[0]
    assert summary["n_scans"] == 3 and summary["n_patients"] == 2
    assert summary["mean_delta"] == pytest.approx(-2 / 3)
    assert summary["mean_abs_delta"] == pytest.approx(1.0)
    assert summary["sign_agreement"] == 1.0 and summary["spearman"] == pytest.approx(1.0)
    assert summary["lower"] <= summary["mean_delta"] <= summary["upper"]
    assert uses_factor(summary)
    flat = summarise(table.assign(delta_logit=[0.01, 0.02, 0.0]), n_bootstrap=50).iloc[0]
    assert not uses_factor(flat)  # a model that barely moves does not "use" the factor
    shown = summary_table(summarise(table, n_bootstrap=50))
    assert shown.index.tolist() == [("infarct", "CTNet (full head input)")]
    assert shown.loc[("infarct", "CTNet (full head input)"), "Uses the factor"] == "yes"

"""End to end in k-fold mode: the tiny synthetic config with split.k_folds 2 through the whole DAG.

Every model is trained once per fold (rule train_fold) and its folds merged (rule merge_folds); the
attribution rule and `htct predict` use the fold ensemble of results/models/ctnet. About 2.5 minutes
on 2 cores.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import copy_workflow, run_snakemake

pytestmark = pytest.mark.slow

CONFIGS = ("tests/config/tiny.yaml", "tests/config/tiny_kfold.yaml")
MODELS = ("ctnet", "wozniak2023", "soundari2022")
K = 2
IDS = {"patient_id": str, "scan_id": str}


@pytest.fixture(scope="module")
def kfold_run(tmp_path_factory) -> Path:
    """`rule all` of the tiny config with two folds, run once per module."""
    workdir = copy_workflow(tmp_path_factory.mktemp("kfold_run"))
    run_snakemake(workdir, configfiles=CONFIGS)
    return workdir


def read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=IDS)


def test_every_model_is_trained_per_fold_and_merged(kfold_run):
    split = pd.read_csv(kfold_run / "results/split/split.tsv", sep="\t", dtype=IDS)
    assert sorted(split.loc[split["part"] != "test", "fold"].unique()) == list(range(K))
    for model in MODELS:
        folder = kfold_run / "results/models" / model
        for k in range(K):
            for name in ("weights.pt", "config.yaml", "threshold.json", "predictions.tsv"):
                assert (folder / f"fold{k}" / name).is_file(), f"{model}/fold{k}/{name}"
        assert not (folder / "weights.pt").exists()  # no single model beside the folds
        threshold = json.loads((folder / "threshold.json").read_text())
        assert threshold["n_folds"] == K
        assert threshold["method"] == "youden_j_on_pooled_out_of_fold_validation"
        predictions = read_tsv(kfold_run / f"results/predictions/{model}.tsv")
        assert predictions["threshold"].unique().tolist() == pytest.approx([threshold["threshold"]])


def test_merged_predictions_are_out_of_fold_and_fold_means(kfold_run):
    scans = read_tsv(kfold_run / "results/split/scans.tsv")
    merged = read_tsv(kfold_run / "results/predictions/ctnet.tsv")
    assert not merged["scan_id"].duplicated().any()
    test_scans = scans.loc[scans["part"] == "test", "scan_id"]
    non_test = scans[scans["part"] != "test"]
    assert sorted(merged.loc[merged["split"] == "test", "scan_id"]) == sorted(test_scans)
    assert sorted(merged.loc[merged["split"] == "val", "scan_id"]) == sorted(non_test["scan_id"])

    folds = [read_tsv(kfold_run / f"results/models/ctnet/fold{k}/predictions.tsv") for k in range(K)]
    # Validation rows: each non-test scan predicted by the fold model that did not train on it.
    val = merged[merged["split"] == "val"].merge(non_test[["scan_id", "fold"]], on="scan_id")
    for k, fold in enumerate(folds):
        fold_val = fold[fold["split"] == "val"].set_index("scan_id")["p_ht"]
        assert sorted(fold_val.index) == sorted(non_test.loc[non_test["fold"] == k, "scan_id"])
        mine = val[val["fold"] == k].set_index("scan_id")["p_ht"]
        np.testing.assert_allclose(mine.loc[fold_val.index], fold_val, atol=1e-6)
    # Test rows: the mean of the folds' probabilities (the ensemble).
    test = merged[merged["split"] == "test"].set_index("scan_id")["p_ht"]
    fold_test = pd.concat(
        [
            fold[fold["split"] == "test"].set_index("scan_id")["p_ht"].rename(k)
            for k, fold in enumerate(folds)
        ],
        axis=1,
    )
    assert sorted(fold_test.index) == sorted(test.index)
    assert (fold_test[0] - fold_test[1]).abs().max() > 0  # the folds are two different models
    np.testing.assert_allclose(test.loc[fold_test.index], fold_test.mean(axis=1), atol=1e-5)


def test_attribution_uses_the_ensemble_and_a_single_comparison_model(kfold_run):
    for ext in ("pdf", "png"):
        assert (kfold_run / f"results/figures/fig3_attention.{ext}").stat().st_size > 1000
    for ext in ("csv", "md", "tex"):
        assert (kfold_run / f"results/tables/attribution.{ext}").is_file()
    attribution = pd.read_csv(kfold_run / "results/tables/attribution.csv", comment="#")
    assert list(attribution["Model"].unique()) == ["CTNet (full head input)", "CTNet (skull-stripped input)"]
    # A k-fold split has no validation part: the ensemble is explained on the test scans only (every
    # other scan trained some fold).
    test_scans = read_tsv(kfold_run / "results/split/scans.tsv").query("part == 'test'")["scan_id"]
    for kind in ("full_head", "skull_stripped"):
        scans = read_tsv(kfold_run / f"results/attribution/{kind}/scans.tsv")
        assert sorted(scans.loc[scans["method"] == "gradcam", "scan_id"]) == sorted(test_scans)
    # The skull-strip comparison stays one model: trained with fold 0's patients as validation.
    comparison = kfold_run / "results/skull_strip_comparison"
    assert (comparison / "models/ctnet/weights.pt").is_file()
    assert not list((comparison / "models/ctnet").glob("fold*"))
    scans = read_tsv(kfold_run / "results/split/scans.tsv")
    predictions = read_tsv(comparison / "predictions/ctnet.tsv")
    fold0 = scans.loc[(scans["part"] != "test") & (scans["fold"] == 0), "scan_id"]
    assert sorted(predictions.loc[predictions["split"] == "val", "scan_id"]) == sorted(fold0)


def test_nothing_left_to_do(kfold_run):
    result = run_snakemake(kfold_run, "-n", configfiles=CONFIGS)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_htct_predict_on_a_test_series_matches_the_workflow(kfold_run, tmp_path):
    from htct.cli import load_single_series
    from htct.preprocess import preprocess_volume
    from htct.train.predict import load_trained_model

    merged = read_tsv(kfold_run / "results/predictions/ctnet.tsv")
    scan = merged[merged["split"] == "test"].iloc[0]
    # The kept axial series of the scan: its study folder (truth/scans.tsv) and series number.
    truth = kfold_run / "resources/synthetic/truth"
    study = read_tsv(truth / "scans.tsv").set_index("scan_id").loc[scan["scan_id"], "dicom_folder"]
    series = read_tsv(truth / "series.tsv")
    kept = series[(series["scan_id"] == scan["scan_id"]) & series["kept"].astype(str).eq("True")]
    dicom_dir = kfold_run / "resources/synthetic" / study / f"SE{int(kept['series_number'].iloc[0]):06d}"
    assert dicom_dir.is_dir()

    htct = Path(sys.executable).with_name("htct")  # the console script ([project.scripts])
    command = [str(htct)] if htct.is_file() else [sys.executable, "-m", "htct.cli"]
    out = tmp_path / "prediction"
    result = subprocess.run(
        [*command, "predict", str(dicom_dir), "--model", "results/models/ctnet", "--out", str(out)],
        cwd=kfold_run,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "ensemble of 2 folds" in result.stdout
    prediction = json.loads((out / "prediction.json").read_text())
    assert prediction["n_models"] == K and prediction["folds"] == [f"fold{k}" for k in range(K)]
    pooled = json.loads((kfold_run / "results/models/ctnet/threshold.json").read_text())
    assert prediction["threshold"] == pytest.approx(pooled["threshold"])
    assert prediction["call"] == ("HT" if prediction["p_ht"] >= pooled["threshold"] else "no HT")
    assert (out / "heatmap.nii.gz").is_file() and (out / "overlay.png").is_file()

    # The predict path prepares the series as the workflow did: the same array up to volumes.npy's
    # float16 storage, whose rounding is at most half a float16 step, 2**-12 = 2.4e-4, below 1.0
    # (read straight from DICOM vs from the NIfTI adds ~3e-7: the NIfTI affine is float32).
    trained = load_trained_model(kfold_run / "results/models/ctnet")
    image, _ = load_single_series(dicom_dir)
    _, n_slices, size, _ = trained.config["input_shape"]
    options = {key: trained.preprocess[key] for key in ("slice_thickness_mm", "windows", "skull_strip")}
    volume, _, _ = preprocess_volume(
        np.asarray(image.dataobj, dtype=np.float32), image.affine, n_slices=n_slices, size=size, **options
    )
    index = read_tsv(kfold_run / "results/arrays/index.tsv").set_index("scan_id")
    volumes = np.load(kfold_run / "results/arrays/volumes.npy", mmap_mode="r")
    stored = np.asarray(volumes[index.loc[scan["scan_id"], "row"]], dtype=np.float32)
    np.testing.assert_allclose(volume, stored, rtol=0, atol=2**-12 + 1e-6)

    # p_ht: the same fold ensemble on that array. The inputs differ only by the float16 rounding
    # above and predictions.tsv keeps 6 significant digits (<= 5e-7); observed differences are
    # <= 1e-6 on the tiny models, so 1e-4 leaves a wide margin yet catches a single fold instead of
    # the ensemble (the tiny folds' test p_ht differ by 1e-3 to 7e-3, so the mean is >= 5e-4 away).
    assert prediction["p_ht"] == pytest.approx(scan["p_ht"], abs=1e-4)
    folds = [read_tsv(kfold_run / f"results/models/ctnet/fold{k}/predictions.tsv") for k in range(K)]
    p_folds = [fold.set_index("scan_id").loc[scan["scan_id"], "p_ht"] for fold in folds]
    assert prediction["p_ht_folds"] == pytest.approx(p_folds, abs=1e-4)

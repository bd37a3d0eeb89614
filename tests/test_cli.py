"""htct predict: a synthetic CT series end to end, k-fold model folders, one-line errors on bad input."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml

from htct.cli import load_single_series, main
from htct.train import load_trained_model, train_model
from htct.train.toy import write_toy_arrays, write_toy_ct_series


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    toy = write_toy_arrays(root / "arrays", n_patients=16, size=32)
    out = root / "ctnet"
    train_model(
        "ctnet", toy["volumes"], toy["index"], toy["split"], out, epochs=1, batch_size=4, device="cpu", threads=1,
        preprocess={"n_slices": 28, "slice_thickness_mm": 5.0, "size": 32, "windows": [[40, 80]], "skull_strip": False},
    )  # fmt: skip
    return out


def test_predict_writes_probability_call_and_heatmap(model_dir, tmp_path, capsys):
    dicom_dir = write_toy_ct_series(tmp_path / "series", n_slices=30, matrix=64)
    out = tmp_path / "out"
    assert (
        main(["predict", str(dicom_dir), "--model", str(model_dir), "--out", str(out), "--threads", "1"]) == 0
    )
    result = json.loads((out / "prediction.json").read_text())
    assert 0 <= result["p_ht"] <= 1
    assert result["call"] == ("HT" if result["p_ht"] >= result["threshold"] else "no HT")
    assert f"p_ht {result['p_ht']:.3f}" in capsys.readouterr().out
    heatmap = nib.load(out / "heatmap.nii.gz")
    assert heatmap.shape == (64, 64, 30)  # the scan's own grid (i, j, k)
    scan, _ = load_single_series(dicom_dir)
    np.testing.assert_allclose(heatmap.affine, scan.affine)  # aligned with the scan
    np.testing.assert_allclose(np.abs(np.diag(heatmap.affine)[:3]), [230 / 64, 230 / 64, 5.0])
    values = np.asarray(heatmap.dataobj)
    assert values.min() >= 0 and values.max() <= 1 and values.max() > 0
    assert (out / "overlay.png").stat().st_size > 0


@pytest.mark.parametrize("content", ["none", "text"])
def test_folder_without_ct_gives_one_line_error(model_dir, tmp_path, capsys, content):
    folder = tmp_path / "not_ct"
    folder.mkdir()
    if content == "text":
        (folder / "notes.txt").write_text("no images here\n")
    assert main(["predict", str(folder), "--model", str(model_dir), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("htct predict: error: no CT image series found in")


def test_too_few_slices_and_missing_model_are_refused(model_dir, tmp_path, capsys):
    dicom_dir = write_toy_ct_series(tmp_path / "short", n_slices=8, matrix=32)
    assert main(["predict", str(dicom_dir), "--model", str(model_dir), "--out", str(tmp_path / "o")]) == 2
    assert "too few slices" in capsys.readouterr().err
    assert (
        main(["predict", str(dicom_dir), "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights.pt not found" in err


# --- k-fold model folders: the fold ensemble -------------------------------------------------------


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return write_toy_ct_series(tmp_path_factory.mktemp("kfold_series") / "series", n_slices=30, matrix=64)


def make_kfold_dir(model_dir, root, threshold=0.5, n_folds=2):
    """A k-fold model folder from the trained `model_dir`: fold0 its copy, fold1 its weights perturbed."""
    root.mkdir(parents=True, exist_ok=True)
    for k in range(n_folds):
        shutil.copytree(model_dir, root / f"fold{k}")
    for k in range(1, n_folds):  # deterministic, large enough to change p_ht and the heatmap
        model = load_trained_model(root / f"fold{k}").model
        generator = torch.Generator().manual_seed(k)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(1 + 0.3 * torch.randn(parameter.shape, generator=generator))
            model.head.fc.bias.add_(2.0)  # p_ht far from fold0's, where mean logit != logit of mean p
        torch.save(model.state_dict(), root / f"fold{k}" / "weights.pt")
    if threshold is not None:
        (root / "threshold.json").write_text(
            json.dumps(
                {
                    "threshold": threshold,
                    "method": "youden_j_on_pooled_out_of_fold_validation",
                    "n_folds": n_folds,
                }
            )
        )
    return root


def predict_json(dicom_dir, model, out):
    assert main(["predict", str(dicom_dir), "--model", str(model), "--out", str(out), "--threads", "1"]) == 0
    return json.loads((out / "prediction.json").read_text())


def test_kfold_folder_predicts_with_the_fold_ensemble(model_dir, series, tmp_path, capsys):
    kfold = make_kfold_dir(model_dir, tmp_path / "ctnet", threshold=None)
    singles = [predict_json(series, kfold / f"fold{k}", tmp_path / f"out{k}") for k in range(2)]
    p_folds = [single["p_ht"] for single in singles]
    assert abs(p_folds[0] - p_folds[1]) > 1e-4  # the folds really differ
    assert all(single["n_models"] == 1 and "p_ht_folds" not in single for single in singles)
    mean = (p_folds[0] + p_folds[1]) / 2
    # The pooled threshold decides the call, not the folds' own: put it on the other side of the mean.
    fold_threshold = json.loads((kfold / "fold0" / "threshold.json").read_text())["threshold"]
    pooled = mean + 1e-3 if mean >= fold_threshold else mean - 1e-3
    (kfold / "threshold.json").write_text(json.dumps({"threshold": pooled, "n_folds": 2, "val_auc": 0.5}))
    capsys.readouterr()

    result = predict_json(series, kfold, tmp_path / "ensemble")
    assert result["n_models"] == 2 and result["folds"] == ["fold0", "fold1"]
    assert result["p_ht_folds"] == pytest.approx(p_folds, abs=1e-6)
    assert result["p_ht"] == pytest.approx(mean, abs=1e-6)
    assert result["threshold"] == pytest.approx(pooled)
    assert result["call"] == ("HT" if mean >= pooled else "no HT")
    assert result["call"] != ("HT" if mean >= fold_threshold else "no HT")
    assert "ensemble of 2 folds" in capsys.readouterr().out

    heatmap = nib.load(tmp_path / "ensemble" / "heatmap.nii.gz")
    assert heatmap.shape == (64, 64, 30)
    values = np.asarray(heatmap.dataobj)
    assert values.min() >= 0 and values.max() <= 1 and values.max() > 0
    # The mean of the folds' heatmaps, rescaled (uncropping is linear, so compare up to scale).
    folds = [np.asarray(nib.load(tmp_path / f"out{k}" / "heatmap.nii.gz").dataobj) for k in range(2)]
    assert not np.allclose(folds[0], folds[1], atol=1e-3)
    average = (folds[0] + folds[1]) / 2
    np.testing.assert_allclose(values / values.max(), average / average.max(), atol=1e-5)


def test_fold_ensemble_is_the_mean_probability_and_mean_heatmap(model_dir, tmp_path):
    from htct.attribution import gradcam

    trained = load_trained_model(make_kfold_dir(model_dir, tmp_path / "ctnet", threshold=0.25))
    assert trained.n_models == 2 and trained.threshold == 0.25
    assert [path.name for path in trained.fold_dirs] == ["fold0", "fold1"]
    volume = torch.rand(3, 1, 28, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        p_folds = torch.stack([torch.sigmoid(model(volume)) for model in trained.models])
        p_ensemble = torch.sigmoid(trained.model(volume))
    assert not torch.allclose(p_folds[0], p_folds[1], atol=1e-4)
    torch.testing.assert_close(p_ensemble, p_folds.mean(0), atol=1e-6, rtol=0)
    heatmap = gradcam(trained.model, volume[0])
    mean = (gradcam(trained.models[0], volume[0]) + gradcam(trained.models[1], volume[0])) / 2
    np.testing.assert_allclose(heatmap, mean / mean.max(), atol=1e-6)
    assert heatmap.max() == pytest.approx(1.0)


def test_kfold_folder_without_pooled_threshold_names_merge_folds(model_dir, series, tmp_path, capsys):
    kfold = make_kfold_dir(model_dir, tmp_path / "ctnet", threshold=None)
    assert main(["predict", str(series), "--model", str(kfold), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"htct predict: error: {kfold / 'threshold.json'} not found")
    assert "merge_folds" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fault", ["input_shape", "model_name", "preprocess", "fold_weights", "n_folds"])
def test_inconsistent_kfold_folder_is_refused(model_dir, series, tmp_path, capsys, fault):
    kfold = make_kfold_dir(model_dir, tmp_path / "ctnet")
    config_yaml = kfold / "fold1" / "config.yaml"
    config = yaml.safe_load(config_yaml.read_text())
    if fault == "input_shape":
        config["input_shape"] = [1, 28, 48, 48]
    elif fault == "model_name":
        config["model"]["name"] = "wozniak2023"
    elif fault == "preprocess":
        config["preprocess"]["skull_strip"] = True
    elif fault == "fold_weights":
        (kfold / "fold1" / "weights.pt").unlink()
    elif fault == "n_folds":
        (kfold / "threshold.json").write_text(json.dumps({"threshold": 0.5, "n_folds": 5}))
    config_yaml.write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["predict", str(series), "--model", str(kfold), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("htct predict: error: ")
    expected = {
        "input_shape": f"the folds of {kfold} disagree on input_shape",
        "model_name": f"the folds of {kfold} disagree on model.name",
        "preprocess": f"the folds of {kfold} disagree on preprocess",
        "fold_weights": f"{kfold / 'fold1' / 'weights.pt'} not found",
        "n_folds": "was chosen on 5 folds",
    }[fault]
    assert expected in err


def test_leftover_single_model_beside_folds_is_ignored_after_merge_folds(model_dir, tmp_path):
    kfold = make_kfold_dir(model_dir, tmp_path / "ctnet", threshold=0.3)
    for name in ("weights.pt", "config.yaml"):  # from an earlier training without folds
        shutil.copy(model_dir / name, kfold / name)
    assert load_trained_model(kfold).n_models == 2
    (kfold / "threshold.json").write_text(json.dumps({"threshold": 0.3}))  # a single model's threshold
    assert load_trained_model(kfold).n_models == 1

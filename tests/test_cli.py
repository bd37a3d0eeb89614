"""htct predict: a synthetic CT series end to end, k-fold model folders, one-line errors on bad input,
batch mode, the research-use notice, the NIfTI header shared by heatmap and scan, --version, --device."""

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from htct.cli import load_single_series, main
from htct.testing import write_toy_arrays, write_toy_ct_series
from htct.train import load_trained_model, train_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    toy = write_toy_arrays(root / "arrays", n_patients=16, size=32)
    out = root / "ctnet"
    train_model(
        "ctnet", toy["volumes"], toy["index"], toy["split"], out, epochs=1, batch_size=4, device="cpu", threads=1,
        preprocess={"n_slices": 28, "slice_thickness_mm": 5.0, "size": 32, "windows": [[40, 80]], "skull_strip": False},
        synthetic=True,
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


def predict_json(dicom_dir, model, out, *options):
    command = [
        "predict",
        str(dicom_dir),
        "--model",
        str(model),
        "--out",
        str(out),
        "--threads",
        "1",
        *options,
    ]
    assert main(command) == 0
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


# --- provenance and the research-use notice -----------------------------------------------------------


def with_provenance(model_dir, root, **provenance):
    """A copy of `model_dir` whose config.yaml provenance has the given entries (None: no provenance)."""
    copy = shutil.copytree(model_dir, root)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    if provenance.get("synthetic", "") is None:
        del config["provenance"]
    else:
        config["provenance"] |= provenance
    (copy / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return copy


def test_training_records_what_the_model_was_trained_on(model_dir):
    import htct

    provenance = yaml.safe_load((model_dir / "config.yaml").read_text())["provenance"]
    assert provenance["synthetic"] is True
    # The toy cohort's split (16 patients, one scan each, alternating labels), counted independently.
    split = pd.read_csv(model_dir.parent / "arrays" / "split.tsv", sep="\t")
    parts = split["part"].value_counts()
    assert provenance["cohort"] == {
        "n_patients": 16, "n_scans": 16, "n_patients_ht": 8,
        **{f"n_patients_{part}": int(parts[part]) for part in ("train", "val", "test")},
    }  # fmt: skip
    assert provenance["code"]["htct"] == htct.__version__
    assert provenance["trained_utc"].endswith("Z")


def test_notice_is_loud_for_a_synthetic_trained_model(model_dir, series, tmp_path, capsys):
    assert main(["predict", str(series), "--model", str(model_dir), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "THIS MODEL WAS TRAINED ON THE SYNTHETIC DEMO COHORT" in err
    assert "16 COMPUTER-GENERATED PHANTOMS (16 SCANS), NOT PATIENTS" in err
    assert "RESEARCH USE ONLY" in err and "!!!!!!!!!!" in err
    result = json.loads((tmp_path / "out" / "prediction.json").read_text())
    assert result["trained_on"] == "synthetic cohort" and result["provenance"]["synthetic"] is True
    assert "SYNTHETIC DEMO COHORT" in result["notice"]


def test_notice_for_an_own_cohort_model_names_cohort_size_and_code(model_dir, series, tmp_path, capsys):
    own = with_provenance(
        model_dir, tmp_path / "own", synthetic=False, code={"htct": "0.1.0", "git": "abc1234"}
    )
    assert main(["predict", str(series), "--model", str(own), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "SYNTHETIC" not in err.upper().replace("RESEARCH USE ONLY", "")
    notice = [line for line in err.splitlines() if "RESEARCH USE ONLY" in line]
    assert len(notice) == 1
    assert (
        "not a medical device" in notice[0]
        and "trained on an own cohort of 16 patients (16 scans)" in notice[0]
    )
    assert "htct 0.1.0 (git abc1234)" in notice[0]
    assert json.loads((tmp_path / "out" / "prediction.json").read_text())["trained_on"] == "own cohort"


def test_notice_says_when_the_training_data_are_unknown(model_dir, series, tmp_path, capsys):
    old = with_provenance(model_dir, tmp_path / "old", synthetic=None)
    assert main(["predict", str(series), "--model", str(old), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "RESEARCH USE ONLY" in err and "what it was trained on is unknown" in err
    assert json.loads((tmp_path / "out" / "prediction.json").read_text())["trained_on"] == "unknown"


# --- the NIfTI files: heatmap and scan open aligned in a viewer ----------------------------------------


def test_heatmap_and_scan_share_the_scans_nifti_header(model_dir, series, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", str(series), "--model", str(model_dir), "--out", str(out)]) == 0
    heatmap, scan = nib.load(out / "heatmap.nii.gz"), nib.load(out / "scan.nii.gz")
    assert heatmap.shape == scan.shape == (64, 64, 30)
    for image in (heatmap, scan):
        header = image.header
        assert int(header["qform_code"]) == 1 and int(header["sform_code"]) == 1  # scanner anchored
        assert header.get_xyzt_units() == ("mm", "sec")
        np.testing.assert_array_equal(header.get_qform(), scan.header.get_qform())
        np.testing.assert_array_equal(header.get_sform(), scan.header.get_sform())
        np.testing.assert_array_equal(header.get_zooms(), scan.header.get_zooms())
    assert heatmap.get_data_dtype() == np.float32
    assert float(heatmap.header["cal_min"]) == 0 and float(heatmap.header["cal_max"]) == 1
    # The scan is the series in HU, exactly as read from DICOM (the workflow's results/nifti/ format).
    hu, _ = load_single_series(series)
    np.testing.assert_allclose(np.asarray(scan.dataobj, dtype=np.float32), np.asarray(hu.dataobj), atol=1e-3)
    np.testing.assert_allclose(scan.affine, hu.affine)


# --- batch mode --------------------------------------------------------------------------------------


def test_batch_mode_predicts_every_case_and_reports_a_bad_one(model_dir, series, tmp_path, capsys):
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copytree(series, cases / "case_a")
    write_toy_ct_series(cases / "case_b", n_slices=30, matrix=48, seed=3)
    write_toy_ct_series(cases / "case_c_short", n_slices=8, matrix=32)  # too few slices: refused
    (cases / "case_d_empty").mkdir()
    (cases / "README.txt").write_text("files beside the case folders are not cases\n")
    out = tmp_path / "batch"
    status = main(["predict", "-i", str(cases), "-o", str(out), "--model", str(model_dir), "--threads", "1"])
    assert status == 2  # some cases failed; their rows say why
    table = pd.read_csv(out / "predictions.tsv", sep="\t", dtype={"case": str})
    assert list(table["case"]) == ["case_a", "case_b", "case_c_short", "case_d_empty"]
    assert list(table["status"]) == ["ok", "ok", "error", "error"]
    ok, bad = table[table["status"] == "ok"], table[table["status"] == "error"]
    assert ok["p_ht"].between(0, 1).all() and ok["error"].isna().all()
    assert bad["p_ht"].isna().all()
    assert "too few slices" in bad["error"].iloc[0] and "no CT image series" in bad["error"].iloc[1]
    assert set(table["trained_on"]) == {"synthetic cohort"}
    for case in ("case_a", "case_b"):
        for name in ("prediction.json", "heatmap.nii.gz", "scan.nii.gz", "overlay.png"):
            assert (out / case / name).is_file(), (case, name)
    assert not (out / "case_c_short").exists()
    captured = capsys.readouterr()
    assert captured.out.count("p_ht ") == 2
    assert "error: case_c_short: " in captured.err and "2 of 4 folder(s) predicted" in captured.err
    # The same numbers as one folder at a time.
    single = predict_json(cases / "case_b", model_dir, tmp_path / "single")
    assert ok.set_index("case").loc["case_b", "p_ht"] == pytest.approx(single["p_ht"], abs=1e-5)
    assert ok.set_index("case").loc["case_b", "call"] == single["call"]


def test_several_dicom_dirs_are_a_batch_and_names_stay_unique(model_dir, series, tmp_path):
    other = write_toy_ct_series(tmp_path / "elsewhere" / "series", n_slices=30, matrix=48, seed=5)
    out = tmp_path / "batch"
    assert main(["predict", str(series), str(other), "-o", str(out), "--model", str(model_dir)]) == 0
    table = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert list(table["case"]) == ["series", "series_2"] and set(table["status"]) == {"ok"}
    assert (out / "series" / "heatmap.nii.gz").is_file() and (out / "series_2" / "heatmap.nii.gz").is_file()


def test_batch_mode_without_cases_and_with_a_bad_model_is_one_line(model_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["predict", "-i", str(tmp_path / "empty"), "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no case folders in it" in err
    assert main(["predict", "-i", str(tmp_path), "--model", str(tmp_path / "no_model")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights.pt not found" in err


# --- --version and --device ----------------------------------------------------------------------------


def test_version(capsys):
    import htct

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"htct {htct.__version__}")


def test_device_cpu_and_unavailable_cuda(model_dir, series, tmp_path, capsys):
    out = tmp_path / "cpu"
    assert (
        main(["predict", str(series), "--model", str(model_dir), "--out", str(out), "--device", "cpu"]) == 0
    )
    assert json.loads((out / "prediction.json").read_text())["device"] == "cpu"
    if torch.cuda.is_available():
        gpu = predict_json(series, model_dir, tmp_path / "cuda", "--device", "cuda")
        assert gpu["device"].startswith("cuda")
        cpu = json.loads((out / "prediction.json").read_text())
        assert gpu["p_ht"] == pytest.approx(cpu["p_ht"], abs=1e-4)
    else:
        capsys.readouterr()
        assert main(["predict", str(series), "--model", str(model_dir), "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--device cuda: no such device here" in err


def test_all_zero_heatmap_is_announced_in_stdout_and_prediction_json(model_dir, series, tmp_path, capsys):
    # A model whose HT logit does not depend on the image (head weights zero): Grad-CAM is all zero.
    flat = tmp_path / "flat_model"
    shutil.copytree(model_dir, flat)
    model = load_trained_model(flat).model
    with torch.no_grad():
        model.head.fc.weight.zero_()
    torch.save(model.state_dict(), flat / "weights.pt")
    result = predict_json(series, flat, tmp_path / "single")
    assert not np.asarray(nib.load(tmp_path / "single" / "heatmap.nii.gz").dataobj).any()
    assert result["heatmap_notice"].startswith("the Grad-CAM heatmap is all zero")
    assert "notice: the Grad-CAM heatmap is all zero" in capsys.readouterr().out
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "case_a").symlink_to(series, target_is_directory=True)
    assert main(["predict", "-i", str(cases), "-o", str(tmp_path / "batch"), "--model", str(flat)]) == 0
    assert "case_a  notice: the Grad-CAM heatmap is all zero" in capsys.readouterr().out
    batch = json.loads((tmp_path / "batch" / "case_a" / "prediction.json").read_text())
    assert batch["heatmap_notice"] == result["heatmap_notice"]
    # A model that looks at the image gives a heatmap and no notice.
    assert predict_json(series, model_dir, tmp_path / "normal")["heatmap_notice"] == ""
    assert "notice:" not in capsys.readouterr().out


def test_mr_series_is_named_as_the_qc_table_would(model_dir, series, tmp_path, capsys):
    import pydicom

    mr = tmp_path / "mr"
    mr.mkdir()
    for path in sorted(series.iterdir()):
        ds = pydicom.dcmread(path)
        ds.Modality = "MR"
        ds.save_as(mr / path.name)
    assert main(["predict", str(mr), "--model", str(model_dir), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("htct predict: error: no CT image series found in") and "modality MR, not CT" in err

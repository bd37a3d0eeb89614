"""htct predict: a synthetic CT series end to end, and one-line errors on bad input."""

import json

import nibabel as nib
import numpy as np
import pytest

from htct.cli import load_single_series, main
from htct.train import train_model
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

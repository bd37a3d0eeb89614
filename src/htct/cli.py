"""Command line: `htct predict DICOM_DIR --model results/models/ctnet [--out DIR]`.

Reads one non-contrast head-CT series, prepares it exactly as the model's training arrays were
prepared (the preprocessing parameters saved in the model's config.yaml), and writes the HT
probability, the call at the model's validation threshold and a Grad-CAM attention heatmap (NIfTI in
the scan's grid and a PNG overlay). A k-fold model folder (fold0/, fold1/, ... and the pooled
threshold.json of rule merge_folds) predicts with the fold ensemble: p_ht is the mean of the folds'
probabilities, the call is made at the threshold chosen on the pooled out-of-fold validation
predictions, and the heatmap is the mean of the folds' Grad-CAM heatmaps. Bad input gives one line
on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from htct.errors import HTCTInputError

EXIT_INPUT_ERROR = 2
DEFAULT_MIN_SLICES = 20  # config.yaml convert.min_slices default


def load_single_series(dicom_dir: str | Path, min_slices: int = DEFAULT_MIN_SLICES, threads: int = 1):
    """Read the one axial CT series in `dicom_dir` into a NIfTI image of HU values.

    Uses `htct.dicom.load_single_series` when the DICOM stage provides it; otherwise composes the
    same series rules from htct.dicom's building blocks (headers, series rules, HU volume).

    Args:
        dicom_dir: folder holding the files of one CT series (any layout, recognised by content).
        min_slices: fewer axial slices than this is refused.
        threads: threads for reading pixel data.

    Returns:
        (nibabel.Nifti1Image of float32 HU values with its RAS affine, dict of QC information).

    Raises:
        HTCTInputError: folder missing, no CT series, several CT series, or a series the rules refuse.
    """
    import htct.dicom

    if hasattr(htct.dicom, "load_single_series"):
        return htct.dicom.load_single_series(dicom_dir)

    import nibabel as nib

    from htct.dicom.discover import iter_files, read_header, series_key
    from htct.dicom.series import classify_series
    from htct.dicom.volume import PixelDataError, build_hu_volume

    dicom_dir = Path(dicom_dir)
    if not dicom_dir.is_dir():
        raise HTCTInputError(f"{dicom_dir} is not a folder; give the folder holding one CT series")
    headers = [read_header(path, dicom_dir) for path in iter_files(dicom_dir)]
    by_series = defaultdict(list)
    for header in headers:
        if not header.problem and header.series_uid and header.modality == "CT":
            by_series[header.series_uid].append(header)
    if not by_series:
        raise HTCTInputError(f"no CT image series found in {dicom_dir} ({len(headers)} files looked at)")
    verdicts = {uid: classify_series(slices, min_slices, "refuse", 0.1) for uid, slices in by_series.items()}
    acceptable = [uid for uid, verdict in verdicts.items() if not verdict.reason]
    if not acceptable:
        reasons = "; ".join(f"series {series_key(uid)}: {v.reason}" for uid, v in verdicts.items())
        raise HTCTInputError(f"no usable axial CT series in {dicom_dir}: {reasons}")
    if len(acceptable) > 1:
        raise HTCTInputError(
            f"{dicom_dir} holds {len(acceptable)} usable CT series; put the one to predict in a folder of its own"
        )
    uid = acceptable[0]
    try:
        volume = build_hu_volume(by_series[uid], verdicts[uid].geometry, threads=threads)
    except PixelDataError as error:
        raise HTCTInputError(f"{dicom_dir}: cannot read the pixel data: {error}") from None
    hu = volume.stored.T.astype(np.float32) * np.float32(volume.scl_slope) + np.float32(volume.scl_inter)
    image = nib.Nifti1Image(hu, volume.affine)
    return image, {
        "series_key": series_key(uid),
        "n_slices": len(by_series[uid]),
        "notes": verdicts[uid].notes,
    }


def predict_scan(
    dicom_dir: str | Path, model_dir: str | Path, out_dir: str | Path, threads: int | None = None
) -> dict[str, object]:
    """Predict HT for one CT series and write prediction.json, heatmap.nii.gz and overlay.png.

    Args:
        dicom_dir: folder with one CT series.
        model_dir: trained model folder (weights.pt, config.yaml, threshold.json), or a k-fold
            model folder (fold0/, fold1/, ... and the pooled threshold.json): the fold ensemble.
        out_dir: output folder (created).
        threads: CPU threads for torch (default: torch's choice).

    Returns:
        The content of prediction.json (p_ht, call, threshold, n_models, paths, timings; for a
        fold ensemble also p_ht_folds, the folds' probabilities in fold order).
    """
    import nibabel as nib
    import torch

    from htct.attribution import gradcam
    from htct.preprocess import preprocess_volume, uncrop_to_scan
    from htct.train.predict import load_trained_model

    started = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    trained = load_trained_model(model_dir)  # first: a wrong model folder fails before reading DICOM
    image, qc = load_single_series(dicom_dir, threads=threads or 1)
    loaded = time.perf_counter()

    in_channels, n_slices, size, _ = trained.config["input_shape"]
    options = trained.preprocess
    kwargs = {"n_slices": n_slices, "size": size}
    for key in ("slice_thickness_mm", "windows", "skull_strip"):
        if key in options:
            kwargs[key] = options[key]
    volume, _, crop = preprocess_volume(np.asarray(image.dataobj, dtype=np.float32), image.affine, **kwargs)
    if volume.shape[0] != in_channels:
        raise HTCTInputError(
            f"{model_dir}/config.yaml: the model takes {in_channels} HU windows but preprocessing gave "
            f"{volume.shape[0]}; retrain or fix preprocess.windows there"
        )
    preprocessed = time.perf_counter()

    x = torch.from_numpy(volume[None]).float()
    with torch.no_grad():  # the ensemble's probability is the mean of its folds' (merge_fold_predictions)
        p_folds = [float(torch.sigmoid(model(x).float()).item()) for model in trained.models]
    p_ht = float(np.mean(p_folds))
    heatmap = gradcam(trained.model, volume)  # a fold ensemble: the mean of the folds' heatmaps
    predicted = time.perf_counter()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    heatmap_scan = uncrop_to_scan(heatmap, crop)
    nib.save(nib.Nifti1Image(heatmap_scan.astype(np.float32), image.affine), out_dir / "heatmap.nii.gz")
    call = p_ht >= trained.threshold
    write_overlay(
        volume[0], heatmap, out_dir / "overlay.png", title=f"p(HT) = {p_ht:.2f} ({'HT' if call else 'no HT'})"
    )
    result = {
        "p_ht": p_ht,
        "threshold": trained.threshold,
        "call": "HT" if call else "no HT",
        "model": trained.config["model"]["name"],
        "model_dir": str(model_dir),
        "n_models": trained.n_models,
        **(
            {"p_ht_folds": p_folds, "folds": [path.name for path in trained.fold_dirs]}
            if trained.fold_dirs
            else {}
        ),
        "series": qc,
        "heatmap": str(out_dir / "heatmap.nii.gz"),
        "overlay": str(out_dir / "overlay.png"),
        "seconds": {
            "read": round(loaded - started, 3),
            "preprocess": round(preprocessed - loaded, 3),
            "predict": round(predicted - preprocessed, 3),
            "total": round(time.perf_counter() - started, 3),
        },
    }
    (out_dir / "prediction.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


def write_overlay(volume: np.ndarray, heatmap: np.ndarray, out_png: str | Path, title: str = "") -> None:
    """PNG of the slice with the most attention: the model's input in grey, the heatmap on top.

    Args:
        volume: one window of the preprocessed scan [slices, i, j] in [0, 1].
        heatmap: attention [slices, i, j] in [0, 1].
        out_png: output path.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slice_index = int(np.argmax(heatmap.sum(axis=(1, 2))))
    fig, ax = plt.subplots(figsize=(4, 4.3), constrained_layout=True)
    # Transposed with origin lower: i (patient left-right) runs horizontally, j (anterior) upwards.
    ax.imshow(volume[slice_index].T, cmap="gray", origin="lower", vmin=0, vmax=1)
    ax.imshow(heatmap[slice_index].T, cmap="jet", origin="lower", alpha=0.35, vmin=0, vmax=1)
    ax.set_title(f"{title}\nslice {slice_index + 1} of {len(volume)}", fontsize=9)
    ax.axis("off")
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="htct", description="CT-based prediction of haemorrhagic transformation."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict", help="HT probability, call and attention heatmap for one non-contrast head-CT series"
    )
    predict.add_argument("dicom_dir", type=Path, help="folder holding one CT series")
    predict.add_argument(
        "--model",
        type=Path,
        default=Path("results/models/ctnet"),
        help="trained model folder; a k-fold one (fold0/, fold1/, ...) predicts with the fold ensemble",
    )
    predict.add_argument(
        "--out", type=Path, default=None, help="output folder (default: ./htct_predict/DICOM_DIR name)"
    )
    predict.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `htct` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "predict":
        out_dir = args.out or Path("htct_predict") / Path(args.dicom_dir).resolve().name
        try:
            result = predict_scan(args.dicom_dir, args.model, out_dir, threads=args.threads)
        except HTCTInputError as error:
            print(f"htct predict: error: {error}", file=sys.stderr)
            return EXIT_INPUT_ERROR
        ensemble = f"  ensemble of {result['n_models']} folds" if result["n_models"] > 1 else ""
        print(
            f"p_ht {result['p_ht']:.3f}  call {result['call']} (threshold {result['threshold']:.3f}){ensemble}  "
            f"heatmap {result['heatmap']}  overlay {result['overlay']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

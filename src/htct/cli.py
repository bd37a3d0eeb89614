"""Command line: `htct predict`, HT probability, call and attention heatmap for head-CT series.

    htct predict DICOM_DIR --model results/models/ctnet --out prediction/    # one series
    htct predict -i cases/ -o predictions/ --model results/models/ctnet     # every case folder of cases/
    htct --version

Each series is read and prepared exactly as the model's training arrays were (the preprocessing
parameters saved in the model's config.yaml). For each one the output folder receives
prediction.json (p_ht, the call at the model's validation threshold), heatmap.nii.gz (Grad-CAM
attention), scan.nii.gz (the converted scan, as the workflow's results/nifti/ writes it) and
overlay.png; heatmap and scan share one NIfTI header (qform and sform code 1, mm, the same affine),
so that they open aligned in 3D Slicer or ITK-SNAP. Batch mode (`-i` a folder of case folders, or
several DICOM_DIR) writes one folder per case and one predictions.tsv with a row per case: a folder
that cannot be predicted gets a row with its error and the others are still predicted.

A k-fold model folder (fold0/, fold1/, ... and the pooled threshold.json of rule merge_folds)
predicts with the fold ensemble: p_ht is the mean of the folds' probabilities, the call is made at
the threshold chosen on the pooled out-of-fold validation predictions, and the heatmap is the mean
of the folds' Grad-CAM heatmaps.

Every run prints a research-use notice on stderr with what the model was trained on (its
config.yaml `provenance:`), in capitals when that was the synthetic cohort. Bad input gives one line
on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from htct.errors import HTCTInputError

if TYPE_CHECKING:  # torch and nibabel are imported only when a command needs them
    import nibabel as nib
    import pandas as pd

    from htct.dicom.volume import HUVolume
    from htct.train.predict import TrainedModel

EXIT_INPUT_ERROR = 2
DEFAULT_MIN_SLICES = 20  # config.yaml convert.min_slices default
# The conversion rules of config.yaml's convert: defaults: tilted series and uneven slice gaps are
# resampled as the workflow's conversion does (htct.dicom.resample), so a scan predicts as it trains.
DEFAULT_GANTRY_TILT = "correct"
DEFAULT_UNEVEN_SPACING = "equalise"
DEFAULT_MAX_SPACING_DEVIATION_MM = 0.1
PREDICTIONS_TSV = "predictions.tsv"
TSV_COLUMNS = [
    "case", "status", "p_ht", "threshold", "call", "model", "n_models", "trained_on", "series_key",
    "n_slices", "scan", "heatmap", "overlay", "dicom_dir", "error",
]  # fmt: skip
EMPTY_HEATMAP = (
    "the Grad-CAM heatmap is all zero: nothing in this scan raised the model's HT logit, so heatmap.nii.gz "
    "and the overlay show no attention (an empty map, not a failed run)"
)
RESEARCH_USE = "RESEARCH USE ONLY: not a medical device; its output must not be used for diagnosis or treatment decisions."


def read_single_series(
    dicom_dir: str | Path, min_slices: int = DEFAULT_MIN_SLICES, threads: int = 1
) -> tuple[HUVolume, dict]:
    """Read the one axial CT series in `dicom_dir` with the workflow's series rules.

    Args:
        dicom_dir: folder holding the files of one CT series (any layout, recognised by content).
        min_slices: fewer axial slices than this is refused.
        threads: threads for reading pixel data.

    Returns:
        (htct.dicom.volume.HUVolume in the workflow's RAS+ voxel order, dict of QC information).

    Raises:
        HTCTInputError: folder missing, no CT series, several CT series, or a series the rules refuse.
    """
    from htct.dicom.discover import iter_files, read_header, series_key
    from htct.dicom.series import classify_series, drop_identical_copies
    from htct.dicom.volume import PixelDataError, build_hu_volume

    dicom_dir = Path(dicom_dir)
    if not dicom_dir.is_dir():
        raise HTCTInputError(f"{dicom_dir} is not a folder; give the folder holding one CT series")
    headers = [read_header(path, dicom_dir) for path in iter_files(dicom_dir)]
    by_series = defaultdict(list)
    other_modality: dict[str, str] = {}  # series_key -> its Modality, for image series that are not CT
    for header in headers:
        if not header.problem and header.series_uid and header.modality == "CT":
            by_series[header.series_uid].append(header)
        elif not header.problem and header.series_uid:
            other_modality[series_key(header.series_uid)] = header.modality
    if not by_series:
        # The reason the workflow's QC table (results/qc/series.tsv) would give these series.
        found = "; ".join(
            f"series {key}: modality {modality or 'missing'}, not CT"
            for key, modality in sorted(other_modality.items())[:3]
        )
        raise HTCTInputError(
            f"no CT image series found in {dicom_dir} ({len(headers)} files looked at"
            + (f"; {found}" if found else "")
            + ")"
        )
    copies = {}
    for uid, slices in by_series.items():  # an identical copy of a slice is dropped, as in the workflow
        by_series[uid], _, copies[uid] = drop_identical_copies(slices)
    verdicts = {
        uid: classify_series(
            slices, min_slices, DEFAULT_GANTRY_TILT, DEFAULT_MAX_SPACING_DEVIATION_MM, DEFAULT_UNEVEN_SPACING
        )
        for uid, slices in by_series.items()
    }
    for uid, note in copies.items():
        if note:
            verdicts[uid].notes.insert(0, note)
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
        volume = build_hu_volume(by_series[uid], verdicts[uid].geometry, threads, verdicts[uid].correction)
    except PixelDataError as error:
        raise HTCTInputError(f"{dicom_dir}: cannot read the pixel data: {error}") from None
    return volume, {
        "series_key": series_key(uid),
        "n_slices": len(by_series[uid]),
        "notes": verdicts[uid].notes,
    }


def load_single_series(
    dicom_dir: str | Path, min_slices: int = DEFAULT_MIN_SLICES, threads: int = 1
) -> tuple[nib.Nifti1Image, dict]:
    """The one axial CT series in `dicom_dir` as a NIfTI image of float32 HU values.

    The image has the header the workflow's conversion writes (htct.dicom.volume.nifti_header:
    qform/sform code 1, mm) with float32 data. See :func:`read_single_series` for the rules.

    Returns:
        (nibabel.Nifti1Image with its RAS+ affine, dict of QC information).
    """
    import nibabel as nib

    volume, qc = read_single_series(dicom_dir, min_slices, threads)
    hu = volume.stored.T.astype(np.float32) * np.float32(volume.scl_slope) + np.float32(volume.scl_inter)
    return nib.Nifti1Image(hu, volume.affine, header=_float_header(volume, "htct scan (HU)")), qc


def _float_header(volume: HUVolume, description: str) -> nib.Nifti1Header:
    """The scan's NIfTI header (htct.dicom.volume.nifti_header) for float32 voxels without scaling."""
    from htct.dicom.volume import nifti_header

    header = nifti_header(volume)
    header.set_data_dtype(np.float32)
    header.set_slope_inter(1.0, 0.0)
    header["descrip"] = description.encode()[:79]
    return header


def provenance_of(trained: TrainedModel) -> dict | None:
    """The model folder's `provenance:` (what it was trained on), or None for older model folders."""
    provenance = trained.config.get("provenance")
    return provenance if isinstance(provenance, dict) else None


def trained_on(provenance: dict | None) -> str:
    """What trained the model: "synthetic cohort", "own cohort" or "unknown" (no provenance recorded)."""
    synthetic = (provenance or {}).get("synthetic")
    return {True: "synthetic cohort", False: "own cohort"}.get(synthetic, "unknown")


def research_notice(trained: TrainedModel) -> str:
    """The notice `htct predict` prints: research use only, and what the model was trained on.

    In capitals and framed when the model was trained on the workflow's synthetic cohort, whose
    probabilities say nothing about patients; a model folder without provenance says so too.
    """
    provenance = provenance_of(trained)
    model = trained.config.get("model", {}).get("name", "?")
    ensemble = f" (ensemble of {trained.n_models} folds)" if trained.n_models > 1 else ""
    if provenance is None:
        return (
            f"htct predict: {RESEARCH_USE} Model {model}{ensemble}: its folder records no training provenance "
            "(trained before htct recorded it, or outside the workflow); what it was trained on is unknown."
        )
    cohort = provenance.get("cohort") or {}
    code = provenance.get("code") or {}
    version = f"htct {code.get('htct', '?')}" + (f" (git {code['git']})" if code.get("git") else "")
    n_patients, n_scans = cohort.get("n_patients", "?"), cohort.get("n_scans", "?")
    size = f"{n_patients} patients ({n_scans} scans)"
    trained_when = f", trained {provenance['trained_utc']}" if provenance.get("trained_utc") else ""
    if provenance.get("synthetic"):
        bar = "!" * 100
        lines = [
            "WARNING: THIS MODEL WAS TRAINED ON THE SYNTHETIC DEMO COHORT:",
            f"{n_patients} COMPUTER-GENERATED PHANTOMS ({n_scans} SCANS), NOT PATIENTS. Its probabilities say",
            "nothing about any real patient's risk of haemorrhagic transformation: use it only to try",
            "the software. Train on your own cohort (config/own_cohort.example.yaml) before any research use.",
            RESEARCH_USE.upper(),
            f"Model {model}{ensemble}; {version}{trained_when}.",
        ]
        return "\n".join([bar, *(f"!! {line}" for line in lines), bar])
    return (
        f"htct predict: {RESEARCH_USE} Model {model}{ensemble} trained on an own cohort of {size}; "
        f"{version}{trained_when}."
    )


def predict_scan(
    dicom_dir: str | Path,
    model_dir: str | Path | TrainedModel,
    out_dir: str | Path,
    threads: int | None = None,
    device: str = "cpu",
) -> dict[str, object]:
    """Predict HT for one CT series; write prediction.json, heatmap.nii.gz, scan.nii.gz, overlay.png.

    Args:
        dicom_dir: folder with one CT series.
        model_dir: trained model folder (weights.pt, config.yaml, threshold.json), or a k-fold
            model folder (fold0/, fold1/, ... and the pooled threshold.json): the fold ensemble; or
            a model loaded by htct.train.predict.load_trained_model (batch mode loads it once).
        out_dir: output folder (created).
        threads: CPU threads for torch (default: torch's choice).
        device: torch device of the model (cpu, cuda, cuda:1).

    Returns:
        The content of prediction.json (p_ht, call, threshold, n_models, provenance, paths,
        timings; for a fold ensemble also p_ht_folds, the folds' probabilities in fold order).
    """
    import nibabel as nib
    import torch

    from htct.attribution import gradcam
    from htct.dicom.volume import write_nifti
    from htct.preprocess import preprocess_volume, uncrop_to_scan
    from htct.train.predict import TrainedModel, load_trained_model

    started = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    # The model first: a wrong model folder fails before any DICOM is read.
    trained = model_dir if isinstance(model_dir, TrainedModel) else load_trained_model(model_dir, device)
    scan, qc = read_single_series(dicom_dir, threads=threads or 1)
    hu = scan.stored.T.astype(np.float32) * np.float32(scan.scl_slope) + np.float32(scan.scl_inter)
    loaded = time.perf_counter()

    in_channels, n_slices, size, _ = trained.config["input_shape"]
    options = trained.preprocess
    kwargs = {"n_slices": n_slices, "size": size}
    for key in ("slice_thickness_mm", "windows", "skull_strip"):
        if key in options:
            kwargs[key] = options[key]
    volume, _, crop = preprocess_volume(hu, scan.affine, **kwargs)
    if volume.shape[0] != in_channels:
        raise HTCTInputError(
            f"{trained.config.get('model', {}).get('name')} config.yaml: the model takes {in_channels} HU windows "
            f"but preprocessing gave {volume.shape[0]}; retrain or fix preprocess.windows there"
        )
    preprocessed = time.perf_counter()

    parameter = next(trained.model.parameters())
    x = torch.from_numpy(volume[None]).float().to(parameter.device)
    with torch.no_grad():  # the ensemble's probability is the mean of its folds' (merge_fold_predictions)
        p_folds = [float(torch.sigmoid(model(x).float()).item()) for model in trained.models]
    p_ht = float(np.mean(p_folds))
    heatmap = gradcam(trained.model, volume)  # a fold ensemble: the mean of the folds' heatmaps
    predicted = time.perf_counter()
    heatmap_notice = "" if np.any(heatmap > 0) else EMPTY_HEATMAP

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The converted scan as the workflow writes it, and the heatmap with the same header (codes,
    # units, affine): viewers overlay the two without resampling.
    write_nifti(scan, out_dir / "scan.nii.gz", threads=threads or 1)
    header = _float_header(scan, "htct Grad-CAM heatmap (0-1)")
    header["cal_min"], header["cal_max"] = 0.0, 1.0
    heatmap_scan = uncrop_to_scan(heatmap, crop).astype(np.float32)
    nib.save(nib.Nifti1Image(heatmap_scan, scan.affine, header=header), out_dir / "heatmap.nii.gz")
    call = p_ht >= trained.threshold
    provenance = provenance_of(trained)
    source = "SYNTHETIC-TRAINED MODEL, " if (provenance or {}).get("synthetic") else ""
    write_overlay(
        volume[0],
        heatmap,
        out_dir / "overlay.png",
        title=f"p(HT) = {p_ht:.2f} ({'HT' if call else 'no HT'}); {source}research use only",
    )
    result = {
        "p_ht": p_ht,
        "threshold": trained.threshold,
        "call": "HT" if call else "no HT",
        "model": trained.config["model"]["name"],
        "model_dir": str(trained.model_dir),
        "n_models": trained.n_models,
        **(
            {"p_ht_folds": p_folds, "folds": [path.name for path in trained.fold_dirs]}
            if trained.fold_dirs
            else {}
        ),
        "trained_on": trained_on(provenance),
        "provenance": provenance,
        "notice": research_notice(trained),
        "device": str(parameter.device),
        "series": qc,
        "scan": str(out_dir / "scan.nii.gz"),
        "heatmap": str(out_dir / "heatmap.nii.gz"),
        "heatmap_notice": heatmap_notice,
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


def case_names(dicom_dirs: list[Path]) -> list[str]:
    """One output folder name per input folder: its name, made unique with _2, _3, ... if needed."""
    names, seen = [], defaultdict(int)
    for folder in dicom_dirs:
        base = Path(os.path.abspath(folder)).name or "case"  # a symlink keeps its own name
        seen[base] += 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


def predict_batch(
    dicom_dirs: list[Path],
    model_dir: str | Path | TrainedModel,
    out_dir: str | Path,
    threads: int | None = None,
    device: str = "cpu",
    on_case: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """Predict every folder of `dicom_dirs` with one model; out_dir/{case}/ per folder and one TSV.

    A folder that cannot be predicted (no CT, several series, refused series, unreadable pixels)
    gets a row with status `error` and the reason; the other folders are still predicted.

    Args:
        dicom_dirs: one folder per case, each holding one CT series.
        model_dir: trained model folder (single or k-fold), loaded once, or a loaded model.
        out_dir: output folder; receives predictions.tsv and a folder per case.
        threads: CPU threads for torch.
        device: torch device.
        on_case: called as `fn(row)` after each case (the CLI prints it).

    Returns:
        The table written to out_dir/predictions.tsv (columns TSV_COLUMNS, one row per folder).

    Raises:
        HTCTInputError: the model folder cannot be loaded (nothing is predicted then).
    """
    import pandas as pd

    from htct.train.predict import TrainedModel, load_trained_model

    trained = model_dir if isinstance(model_dir, TrainedModel) else load_trained_model(model_dir, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for case, dicom_dir in zip(case_names(dicom_dirs), dicom_dirs, strict=True):
        row = {"case": case, "dicom_dir": str(dicom_dir), "trained_on": trained_on(provenance_of(trained))}
        try:
            result = predict_scan(dicom_dir, trained, out_dir / case, threads=threads)
        except HTCTInputError as error:
            row |= {"status": "error", "error": str(error), "model": trained.config["model"]["name"]}
        else:
            row |= {key: result[key] for key in ("p_ht", "threshold", "call", "model", "n_models")}
            row |= {key: result[key] for key in ("scan", "heatmap", "overlay")}
            row |= {"status": "ok", "series_key": result["series"]["series_key"]}
            row["heatmap_notice"] = result["heatmap_notice"]
            row["n_slices"] = result["series"]["n_slices"]
        rows.append(row)
        if on_case is not None:
            on_case(row)
    table = pd.DataFrame(rows, columns=TSV_COLUMNS)
    table["n_models"] = table["n_models"].astype("Int64")
    table["n_slices"] = table["n_slices"].astype("Int64")
    table.to_csv(out_dir / PREDICTIONS_TSV, sep="\t", index=False, float_format="%.6g")
    return table


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
    from htct.provenance import code_version

    version = code_version()
    parser = argparse.ArgumentParser(
        prog="htct", description="CT-based prediction of haemorrhagic transformation (research use only)."
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"htct {version['htct']}" + (f" (git {version['git']})" if version["git"] else ""),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict",
        help="HT probability, call and attention heatmap for non-contrast head-CT series",
        description="One series (DICOM_DIR), several (DICOM_DIR ...), or every case folder of -i INPUT; "
        "several give OUT/{case}/ per folder and OUT/predictions.tsv. Research use only.",
    )
    predict.add_argument(
        "dicom_dirs", type=Path, nargs="*", metavar="DICOM_DIR", help="folder holding one CT series"
    )
    predict.add_argument(
        "-i",
        "--input",
        type=Path,
        default=None,
        help="batch mode: a folder whose subfolders are the cases, one CT series each (nnU-Net's -i)",
    )
    predict.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="output folder (default: ./htct_predict/DICOM_DIR name, or ./htct_predict in batch mode)",
    )
    predict.add_argument(
        "-m",
        "--model",
        type=Path,
        default=Path("results/models/ctnet"),
        help="trained model folder; a k-fold one (fold0/, fold1/, ...) predicts with the fold ensemble",
    )
    predict.add_argument(
        "--device", default="auto", help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N"
    )
    predict.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    return parser


def _cases(args: argparse.Namespace) -> list[Path]:
    """The case folders of a predict call: DICOM_DIR arguments, then the subfolders of -i."""
    cases = list(args.dicom_dirs)
    if args.input is not None:
        if not args.input.is_dir():
            raise HTCTInputError(
                f"-i {args.input}: no such folder; give the folder holding one folder per case"
            )
        subfolders = sorted(path for path in args.input.iterdir() if path.is_dir())
        if not subfolders:
            raise HTCTInputError(
                f"-i {args.input}: no case folders in it; put each case's CT series in a folder of its own "
                "(or give a single series as DICOM_DIR)"
            )
        cases += subfolders
    if not cases:
        raise HTCTInputError(
            "give a DICOM_DIR or -i INPUT (a folder of case folders); see htct predict --help"
        )
    return cases


def _print_row(row: dict) -> None:
    if row["status"] == "ok":
        ensemble = f"  ensemble of {row['n_models']} folds" if row["n_models"] > 1 else ""
        print(
            f"{row['case']}  p_ht {row['p_ht']:.3f}  call {row['call']} (threshold {row['threshold']:.3f})"
            f"{ensemble}  heatmap {row['heatmap']}  scan {row['scan']}",
            flush=True,
        )
        if row.get("heatmap_notice"):
            print(f"{row['case']}  notice: {row['heatmap_notice']}", flush=True)
    else:
        print(f"htct predict: error: {row['case']}: {row['error']}", file=sys.stderr, flush=True)


def predict_command(args: argparse.Namespace) -> int:
    """`htct predict`: one folder (as before: outputs directly in --out) or a batch."""
    from htct.train.predict import load_trained_model
    from htct.train.trainer import resolve_device

    try:
        cases = _cases(args)
        try:
            device = resolve_device(args.device)
        except (RuntimeError, ValueError):
            raise HTCTInputError(
                f"--device {args.device}: no such device here (torch sees no CUDA GPU); use --device cpu"
            ) from None
        trained = load_trained_model(args.model, device)
        batch = args.input is not None or len(cases) > 1
        if not batch:
            out_dir = args.out or Path("htct_predict") / Path(os.path.abspath(cases[0])).name
            result = predict_scan(cases[0], trained, out_dir, threads=args.threads)
    except HTCTInputError as error:
        print(f"htct predict: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    # Wherever a probability is shown, the notice comes with it (and only then: a refused input
    # keeps its one-line error).
    print(research_notice(trained), file=sys.stderr, flush=True)
    if not batch:
        ensemble = f"  ensemble of {result['n_models']} folds" if result["n_models"] > 1 else ""
        print(
            f"p_ht {result['p_ht']:.3f}  call {result['call']} (threshold {result['threshold']:.3f}){ensemble}  "
            f"heatmap {result['heatmap']}  scan {result['scan']}  overlay {result['overlay']}"
        )
        if result["heatmap_notice"]:
            print(f"notice: {result['heatmap_notice']}")
        return 0
    out_dir = args.out or Path("htct_predict")
    table = predict_batch(cases, trained, out_dir, threads=args.threads, on_case=_print_row)
    n_errors = int((table["status"] == "error").sum())
    print(
        f"htct predict: {len(table) - n_errors} of {len(table)} folder(s) predicted"
        + (f", {n_errors} with an error" if n_errors else "")
        + f"; table {Path(out_dir) / PREDICTIONS_TSV}",
        file=sys.stderr,
    )
    return EXIT_INPUT_ERROR if n_errors else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `htct` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "predict":
        return predict_command(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

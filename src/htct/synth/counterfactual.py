"""Counterfactual scans: the same synthetic scan re-rendered with one image factor left out.

For a synthetic cohort every factor behind the label is known, so the question "does the model use
the infarct?" can be asked directly: render the same head, pose and noise without the infarct (or
without the hyperdense artery, or without leukoaraiosis), send it through the same conversion and
preprocessing, and compare the model's logit with the one on the original scan. The image-only
oracle's change is known exactly from the risk model (:func:`oracle_counterfactual`).

The cohort's tables are drawn again from its settings (:func:`htct.synth.sample_cohort` is
deterministic); :func:`check_matches_truth` refuses settings that do not reproduce the cohort on
disk, so the counterfactuals always belong to the scans that were trained and tested on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from htct.errors import HTCTInputError
from htct.synth import risk
from htct.synth.cohort import sample_cohort
from htct.synth.generate import IMAGE_FACTORS, PatientJob, plan_patients, write_patient

log = logging.getLogger(__name__)


def factor_present(scans: pd.DataFrame, factor: str) -> pd.Series:
    """Whether ``factor`` is in the image of each scan (a row of truth/scans.tsv).

    The infarct counts only where it is visible (``visible``: its hypodensity reaches
    ``risk.VISIBLE_HU_DROP``); below that the oracle already treats the scan as showing none.
    """
    if factor == "infarct":
        return scans["visible"].astype(bool)
    if factor == "hyperdense_artery":
        return scans["hyperdense_artery"].astype(int) == 1
    if factor == "leukoaraiosis":
        return scans["leukoaraiosis"].astype(int) > 0
    raise ValueError(f"factor must be one of {IMAGE_FACTORS}, not {factor!r}")


def oracle_counterfactual(scans: pd.DataFrame, factor: str, model: risk.RiskModel) -> np.ndarray:
    """The image-only oracle's P(HT) on each scan with ``factor`` left out of the image.

    The oracle reads the image factors perfectly: without the infarct it sees the artery sign and
    leukoaraiosis only (the infarct volume integrated out, as on a scan where the infarct is not
    yet visible); without the artery sign or leukoaraiosis it sees that factor at 0.

    Args:
        scans: rows of truth/scans.tsv (lesion_volume_ml, visible, hyperdense_artery, leukoaraiosis).
        factor: one of IMAGE_FACTORS.
        model: the cohort's risk model.

    Returns:
        P(HT) per scan; equal to ``p_image_scan`` where the factor is absent.
    """
    visible = scans["visible"].astype(bool).to_numpy()
    hda = scans["hyperdense_artery"].to_numpy(dtype=int)
    grade = scans["leukoaraiosis"].to_numpy(dtype=int)
    z_volume = risk.z_volume_from_ml(scans["lesion_volume_ml"].to_numpy(dtype=float))
    if factor == "infarct":
        visible = np.zeros_like(visible)
    elif factor == "hyperdense_artery":
        hda = np.zeros_like(hda)
    elif factor == "leukoaraiosis":
        grade = np.zeros_like(grade)
    else:
        raise ValueError(f"factor must be one of {IMAGE_FACTORS}, not {factor!r}")
    with_volume = model.p_image(z_volume, hda, grade)
    without_volume = model.p_image_without_volume(hda, grade)
    return np.where(visible, with_volume, without_volume)


def check_matches_truth(cohort_scans: pd.DataFrame, truth_scans: pd.DataFrame, truth_dir: Path) -> None:
    """Refuse cohort settings that do not reproduce the cohort on disk (its truth/scans.tsv)."""
    drawn = cohort_scans.set_index("scan_id")["p_image_scan"]
    written = truth_scans.set_index("scan_id")["p_image_scan"]
    if set(drawn.index) != set(written.index) or not np.allclose(
        drawn.loc[written.index].to_numpy(), written.to_numpy(), rtol=1e-4, atol=1e-6
    ):
        raise HTCTInputError(
            f"{truth_dir}/scans.tsv: the synthetic cohort on disk was not generated with the configured "
            "synthetic: settings (seed, n_patients, n_readers, design); rerun rule synth_cohort"
        )


def _axial_only(job: PatientJob) -> PatientJob:
    """The patient's job with only the kept axial series of each study (no scout, no thin recon)."""
    kept = {
        scan_id: [s for s in series if s["kind"] == "axial" and bool(s["kept"])]
        for scan_id, series in job.series.items()
    }
    return replace(job, series=kept)


def generate_counterfactuals(
    dicom_dir: str | Path,
    clinical_csv: str | Path,
    oracle_tsv: str | Path,
    factor: str,
    patient_ids: Iterable[str],
    truth_dir: str | Path,
    n_patients: int,
    seed: int,
    matrix: int,
    n_readers: int = 8,
    design: risk.CohortDesign | dict | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Re-render every scan of the given patients without ``factor`` and write them as DICOM.

    Every study keeps its headers, UIDs and dates (so the converter gives the same scan IDs); only
    the kept axial series is written, with the same head, pose and noise as the original, so the
    images differ from the originals only in the factor's voxels.

    Args:
        dicom_dir: the DICOM tree to write (the series).
        clinical_csv: the patients' rows of the clinical sheet (for the converter).
        oracle_tsv: per scan: whether the factor is in the image (present), p_image_scan and
            p_image_scan_counterfactual.
        factor: one of IMAGE_FACTORS.
        patient_ids: the patients whose scans are re-rendered (e.g. the test patients).
        truth_dir: the cohort's truth folder (resources/synthetic/truth), checked against the settings.
        n_patients: the synthetic cohort's settings (config.yaml ``synthetic:``).
        seed: as above.
        matrix: as above.
        n_readers: as above.
        design: as above (a CohortDesign or config.yaml's ``synthetic.design``).
        threads: worker processes.

    Returns:
        The oracle table written to ``oracle_tsv``.
    """
    if factor not in IMAGE_FACTORS:
        raise ValueError(f"factor must be one of {IMAGE_FACTORS}, not {factor!r}")
    dicom_dir, truth_dir = Path(dicom_dir), Path(truth_dir)
    if isinstance(design, dict):
        design = risk.CohortDesign.from_config(design)
    design = design or risk.PAPER_DESIGN
    started = time.perf_counter()
    cohort = sample_cohort(n_patients, seed, n_readers, design)
    truth_scans = pd.read_csv(truth_dir / "scans.tsv", sep="\t", dtype={"scan_id": str, "patient_id": str})
    check_matches_truth(cohort.scans, truth_scans, truth_dir)
    wanted = set(patient_ids)
    unknown = wanted - set(cohort.patients["patient_id"])
    if unknown:
        raise HTCTInputError(f"patients {sorted(unknown)[:3]} are not in the synthetic cohort")
    jobs = [_axial_only(job) for job in plan_patients(cohort, seed) if job.patient.name in wanted]
    dicom_dir.mkdir(parents=True, exist_ok=True)
    arguments = [(job, dicom_dir, None, seed, matrix, factor) for job in jobs]
    if threads > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
            list(pool.map(write_patient, *zip(*arguments, strict=True), chunksize=2))
    else:
        for job_arguments in arguments:
            write_patient(*job_arguments)
    cohort.clinical[cohort.clinical["patient_id"].isin(wanted)].to_csv(clinical_csv, index=False)
    scans = cohort.scans[cohort.scans["patient_id"].isin(wanted)]
    model = risk.risk_model(design)
    oracle = pd.DataFrame(
        {
            "scan_id": scans["scan_id"],
            "patient_id": scans["patient_id"],
            "factor": factor,
            "present": factor_present(scans, factor),
            "p_image_scan": scans["p_image_scan"],
            "p_image_scan_counterfactual": oracle_counterfactual(scans, factor, model),
        }
    )
    oracle.to_csv(oracle_tsv, sep="\t", index=False, float_format="%.6g")
    log.info(
        "counterfactuals without %s: %d scans of %d patients (%d with the factor) in %.0f s",
        factor, len(oracle), len(jobs), int(oracle["present"].sum()), time.perf_counter() - started,
    )  # fmt: skip
    return oracle

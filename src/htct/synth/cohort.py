"""Draw a synthetic cohort as tables: patients, scans, series, readers, PHI (no images).

:func:`sample_cohort` is fast (no rendering), so statistical properties (prevalence, oracle AUC,
reader sensitivities) can be checked on large cohorts; :func:`htct.synth.generate_cohort` renders
and writes the DICOM files from these tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import truncnorm

from htct.synth import phi, risk
from htct.synth.readers import simulate_readers

THIN_SERIES_PROBABILITY = 0.08  # the only axial series of the study is 2.5 mm
EXTRA_THIN_RECON_PROBABILITY = 0.05  # a 5 mm study also holds a 2.5 mm reconstruction
SCOUT_PROBABILITY = 0.15
SLICE_THICKNESS_MM = 5.0
THIN_SLICE_THICKNESS_MM = 2.5
MIN_SLICES_5MM = 24
MAX_SLICES_5MM = 40
FIRST_SCAN_MEDIAN_HOURS = 6.0
FIRST_SCAN_LOG_SD = 0.8


@dataclass
class SyntheticCohort:
    """The tables of a synthetic cohort.

    Attributes:
        clinical: the clinical sheet (schemas/clinical.schema.yaml), one row per patient.
        patients: truth per patient: label, p_true, p_image, factors and anatomy parameters.
        scans: truth per scan (= study): timing, HU drop, visibility, geometry parameters.
        series: one row per DICOM series to write (axial, extra thin reconstruction, scout).
        readers: reader study, long format (schemas/readers.schema.yaml), every scan.
        identities: per patient, the fake identity written to the headers (wide; never in truth/).
        phi: every identifying string written to the headers (patient_id, scan_id, keyword, value).
    """

    clinical: pd.DataFrame
    patients: pd.DataFrame
    scans: pd.DataFrame
    series: pd.DataFrame
    readers: pd.DataFrame
    identities: pd.DataFrame
    phi: pd.DataFrame


def exact_counts(n: int, probabilities: Sequence[float]) -> np.ndarray:
    """Counts of n items over categories with the given shares, summing to n: the floors of
    n * share, the remaining items to the largest remainders (Hamilton's method; ties to the
    earlier category)."""
    quotas = n * np.asarray(probabilities, dtype=float) / np.sum(probabilities)
    counts = np.floor(quotas).astype(int)
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def allocate_exactly(
    uniforms: np.ndarray, categories: Sequence, probabilities: Sequence[float]
) -> np.ndarray:
    """A categorical draw whose counts are exact: the items with the smallest uniforms get the first
    category, the next ones the second, and so on, in the counts of :func:`exact_counts`.

    Each item's category has the design's probabilities (up to rounding of the counts), as with
    inverse-CDF sampling from the same uniforms, but the realised shares are the design's shares
    (a paper's Table 1 reports realised shares, not the probabilities of a draw)."""
    ranks = np.empty(len(uniforms), dtype=int)
    ranks[np.argsort(uniforms, kind="stable")] = np.arange(len(uniforms))
    bounds = np.cumsum(exact_counts(len(uniforms), probabilities))
    return np.asarray(categories)[np.searchsorted(bounds, ranks, side="right")]


def _exact_normal(draws: np.ndarray, mean: float, sd: float) -> np.ndarray:
    """Normal draws shifted and scaled to have exactly the given sample mean and SD (ddof 1)."""
    if len(draws) < 2 or np.std(draws) == 0:
        return draws
    return mean + sd * (draws - draws.mean()) / draws.std(ddof=1)


def _sample_patients(n_patients: int, rng: np.random.Generator, model: risk.RiskModel) -> pd.DataFrame:
    # Table 1's marginals are met exactly, not in expectation: age standardised to the design's mean
    # and SD before rounding, sex, medication and scans per patient allocated in exact counts. The
    # uniforms are drawn as by the plain draws, so the rest of the cohort is drawn from the same stream.
    design = model.design
    raw_age = _exact_normal(
        rng.normal(design.age_mean, design.age_sd, n_patients), design.age_mean, design.age_sd
    )
    age = np.clip(np.rint(raw_age), risk.AGE_MIN, risk.AGE_MAX).astype(int)
    male = design.male_probability
    sex = allocate_exactly(rng.random(n_patients), ["M", "F"], [male, 1 - male])
    medication = allocate_exactly(rng.random(n_patients), risk.MEDICATIONS, design.medication_probabilities)
    z_volume = truncnorm.ppf(rng.random(n_patients), risk.Z_VOLUME_MIN, risk.Z_VOLUME_MAX)
    hda = (rng.random(n_patients) < risk.hda_probability(z_volume)).astype(int)
    grade_cdf = np.cumsum(risk.leukoaraiosis_probabilities(age), axis=1)
    leukoaraiosis = (rng.random(n_patients)[:, None] > grade_cdf[:, :-1]).sum(axis=1)
    p_true = model.p_true(z_volume, hda, leukoaraiosis, age, medication)
    label = (rng.random(n_patients) < p_true).astype(int)
    patients = pd.DataFrame(
        {
            "patient_id": [f"HT{i + 1:04d}" for i in range(n_patients)],
            "label": label,
            "p_true": p_true,
            "p_image": model.p_image(z_volume, hda, leukoaraiosis),
            "age": age,
            "sex": sex,
            "medication": medication,
            "lesion_volume_ml": risk.volume_ml_from_z(z_volume),
            "z_volume": z_volume,
            "hyperdense_artery": hda,
            "leukoaraiosis": leukoaraiosis,
            "hu_drop_max": np.clip(
                rng.normal(risk.HU_DROP_MAX_MEAN, risk.HU_DROP_MAX_SD, n_patients), 6.0, 15.0
            ),
        }
    )
    # Anatomy: independent of every risk factor, so the image carries no hidden clinical
    # information (which would let an image model beat p_image). Head size depends on sex only,
    # and sex has no effect on risk.
    scale = rng.normal(1.0, 0.035, n_patients) + np.where(sex == "M", 0.02, -0.02)
    patients["brain_a_mm"] = 68.0 * scale
    patients["brain_b_mm"] = 86.0 * scale
    patients["brain_c_mm"] = 60.0 * scale
    patients["brain_c_inf_mm"] = 0.88 * patients["brain_c_mm"]
    patients["skull_thickness_mm"] = rng.uniform(5.5, 7.5, n_patients)
    patients["ventricle_scale"] = np.clip(rng.normal(1.0, 0.15, n_patients), 0.7, 1.5)
    patients["sulcal_width"] = rng.uniform(0.03, 0.07, n_patients)
    patients["lesion_side"] = np.where(rng.random(n_patients) < 0.5, 1, -1)
    patients["lesion_y_fraction"] = rng.uniform(-0.25, 0.15, n_patients)
    patients["lesion_z_fraction"] = rng.uniform(0.0, 0.3, n_patients)
    patients["n_scans"] = allocate_exactly(rng.random(n_patients), [1, 2, 3], design.scans_per_patient)
    return patients


def _sample_phi(patients: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    n = len(patients)
    phi_table = pd.DataFrame({"patient_id": patients["patient_id"]})
    phi_table["dicom_patient_id"] = phi.hospital_ids(rng, n, 8)
    phi_table["patient_name"] = [phi.person_name(rng, s) for s in patients["sex"]]
    phi_table["referring_physician"] = [phi.physician_name(rng) for _ in range(n)]
    phi_table["institution"] = rng.choice(np.array(phi.INSTITUTIONS), size=n)
    phi_table["folder"] = phi.folder_names(rng, n)
    return phi_table


def _sample_scans(patients: pd.DataFrame, rng: np.random.Generator, model: risk.RiskModel) -> pd.DataFrame:
    rows = []
    epoch = dt.datetime(2019, 1, 1)
    accession_numbers = iter(phi.hospital_ids(rng, int(patients["n_scans"].sum()), 10))
    for patient in patients.itertuples():
        onset = epoch + dt.timedelta(minutes=int(rng.integers(0, 5 * 365 * 24 * 60)))
        hours = FIRST_SCAN_MEDIAN_HOURS * np.exp(FIRST_SCAN_LOG_SD * rng.standard_normal())
        for k in range(1, patient.n_scans + 1):
            if k > 1:
                hours += rng.uniform(18.0, 96.0)  # follow-up CT a day or a few days later
            acquired = onset + dt.timedelta(hours=float(hours))
            drop = float(risk.hu_drop(hours, patient.hu_drop_max))
            thin_only = rng.random() < THIN_SERIES_PROBABILITY
            rows.append(
                {
                    "scan_id": f"{patient.patient_id}_scan{k}",
                    "patient_id": patient.patient_id,
                    "scan_rank": k,
                    "study_date": acquired.strftime("%Y%m%d"),
                    "study_time": acquired.strftime("%H%M%S"),
                    "hours_since_onset": hours,
                    "lesion_volume_ml": patient.lesion_volume_ml,
                    "lesion_hu_drop": drop,
                    "visible": drop >= risk.VISIBLE_HU_DROP,
                    "hyperdense_artery": patient.hyperdense_artery,
                    "leukoaraiosis": patient.leukoaraiosis,
                    "slice_thickness_mm": THIN_SLICE_THICKNESS_MM if thin_only else SLICE_THICKNESS_MM,
                    "extra_thin_recon": (not thin_only) and rng.random() < EXTRA_THIN_RECON_PROBABILITY,
                    "has_scout": rng.random() < SCOUT_PROBABILITY,
                    "accession_number": next(accession_numbers),
                    "noise_sd_hu": rng.uniform(4.0, 6.0),
                    "fov_mm": rng.uniform(220.0, 250.0),
                    "recon_offset_x_mm": rng.uniform(-3.0, 3.0),
                    "recon_offset_y_mm": rng.uniform(-3.0, 3.0),
                    "head_x_mm": rng.normal(0.0, 5.0),
                    "head_y_mm": rng.normal(8.0, 5.0),
                    "head_z_mm": rng.uniform(-220.0, -80.0),
                    "yaw_deg": rng.normal(0.0, 3.0),
                    "pitch_deg": rng.normal(0.0, 6.0),
                    "roll_deg": rng.normal(0.0, 2.0),
                    "below_brain_mm": rng.uniform(0.0, 40.0),
                    "above_vertex_mm": rng.uniform(0.0, 15.0),
                    "superior_first": rng.random() < 0.5,  # InstanceNumber 1 is the top slice
                }
            )
    scans = pd.DataFrame(rows)
    visible_p = model.p_image(
        risk.z_volume_from_ml(scans["lesion_volume_ml"]), scans["hyperdense_artery"], scans["leukoaraiosis"]
    )
    hidden_p = model.p_image_without_volume(scans["hyperdense_artery"], scans["leukoaraiosis"])
    scans["p_image_scan"] = np.where(scans["visible"], visible_p, hidden_p)
    return scans


def _slice_range(scan: pd.Series, patient: pd.Series) -> tuple[float, int]:
    """Lowest slice position (world z, mm) and number of 5 mm slices covering skull base to vertex."""
    bottom = scan["head_z_mm"] - patient["brain_c_inf_mm"] - scan["below_brain_mm"]
    top = scan["head_z_mm"] + patient["brain_c_mm"] + 2.0 + patient["skull_thickness_mm"] + 5.0
    top += scan["above_vertex_mm"]
    n_slices = int(np.clip(np.ceil((top - bottom) / SLICE_THICKNESS_MM) + 1, MIN_SLICES_5MM, MAX_SLICES_5MM))
    return round(float(bottom), 1), n_slices


def _series_table(scans: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    rows = []
    by_patient = patients.set_index("patient_id")
    for scan in scans.to_dict("records"):
        bottom, n5 = _slice_range(pd.Series(scan), by_patient.loc[scan["patient_id"]])
        thicknesses = [scan["slice_thickness_mm"]]
        if scan["extra_thin_recon"]:
            thicknesses.append(THIN_SLICE_THICKNESS_MM)
        series_number = 1
        if scan["has_scout"]:
            rows.append({"scan_id": scan["scan_id"], "series_number": 1, "kind": "scout", "kept": False})
            series_number = 2
        for index, thickness in enumerate(thicknesses):
            n_slices = n5 if thickness == SLICE_THICKNESS_MM else 2 * n5
            first_z = (
                bottom if thickness == SLICE_THICKNESS_MM else bottom - (SLICE_THICKNESS_MM - thickness) / 2
            )
            rows.append(
                {
                    "scan_id": scan["scan_id"],
                    "series_number": series_number,
                    "kind": "axial",
                    # The converter keeps the series closest to 5 mm (docs/architecture.md).
                    "kept": index == 0,
                    "slice_thickness_mm": thickness,
                    "n_slices": n_slices,
                    "first_z_mm": round(first_z, 2),
                }
            )
            series_number += 1
    return pd.DataFrame(rows)


def _phi_long(phi_table: pd.DataFrame, scans: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """Every PHI value written to the headers, long format."""
    rows = []
    first_dates = scans[scans["scan_rank"] == 1].set_index("patient_id")["study_date"]
    for entry, patient in zip(phi_table.itertuples(), patients.itertuples(), strict=True):
        birth = birth_date(first_dates[entry.patient_id], patient.age, entry.dicom_patient_id)
        for keyword, value in (
            ("PatientID", entry.dicom_patient_id),
            ("PatientName", entry.patient_name),
            ("PatientBirthDate", birth),
            ("ReferringPhysicianName", entry.referring_physician),
            ("InstitutionName", entry.institution),
        ):
            rows.append({"patient_id": entry.patient_id, "scan_id": "", "keyword": keyword, "value": value})
    for scan in scans.itertuples():
        rows.append(
            {
                "patient_id": scan.patient_id,
                "scan_id": scan.scan_id,
                "keyword": "AccessionNumber",
                "value": scan.accession_number,
            }
        )
    return pd.DataFrame(rows)


def birth_date(first_study_date: str, age: int, dicom_patient_id: str) -> str:
    """A birth date (YYYYMMDD) giving ``age`` full years on the first study date.

    The day within the year is derived from the MRN so it is fixed per patient.
    """
    study = dt.datetime.strptime(first_study_date, "%Y%m%d").date()
    days_after_birthday = int(dicom_patient_id) % 360
    birthday = study - dt.timedelta(days=days_after_birthday)
    try:
        born = birthday.replace(year=birthday.year - age)
    except ValueError:  # 29 February
        born = (birthday - dt.timedelta(days=1)).replace(year=birthday.year - age)
    return born.strftime("%Y%m%d")


def sample_cohort(
    n_patients: int, seed: int, n_readers: int = 8, design: risk.CohortDesign = risk.PAPER_DESIGN
) -> SyntheticCohort:
    """Draw the tables of a synthetic cohort (no images).

    Args:
        n_patients: number of patients.
        seed: random seed; the same seed gives the same tables.
        n_readers: number of simulated neurologists in the reader study.
        design: clinical marginals, HT prevalence and scans per patient (default: the paper's).

    Returns:
        The cohort's tables.

    Example:
        >>> cohort = sample_cohort(200, seed=1)
        >>> 0.38 < cohort.clinical["label"].mean() < 0.6
        True
    """
    model = risk.risk_model(design)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    patients = _sample_patients(n_patients, rng, model)
    phi_table = _sample_phi(patients, rng)
    scans = _sample_scans(patients, rng, model)
    series = _series_table(scans, patients)
    readers = simulate_readers(
        scans, patients, n_readers, np.random.default_rng(np.random.SeedSequence([seed, 1]))
    )
    clinical = pd.DataFrame(
        {
            "patient_id": patients["patient_id"],
            "dicom_patient_id": phi_table["dicom_patient_id"],
            "label": patients["label"],
            "age": patients["age"],
            "sex": patients["sex"],
            "medication": patients["medication"],
        }
    )
    return SyntheticCohort(
        clinical=clinical,
        patients=patients,
        scans=scans,
        series=series,
        readers=readers,
        identities=phi_table,
        phi=_phi_long(phi_table, scans, patients),
    )

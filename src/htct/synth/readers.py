"""Simulated neurologists reading every synthetic scan (the paper's reader study).

Model: the evidence a scan offers is ``logit(p_image_scan)``, the log-odds of HT given what is
visible on it (see :mod:`htct.synth.risk`). Reader r perceives::

    perceived = evidence + u_scan + e_scan_r,  u_scan ~ N(0, SHARED_NOISE_SD),  e ~ N(0, OWN_NOISE_SD)

``u_scan`` is shared by all readers (how the scan looks: a subtle infarct fools everyone), which
makes the readers agree with each other more than chance. Reader r reports
``p_ht = sigmoid(SLOPE * (perceived - threshold_r))`` rounded to 0.05, as clinicians give round
numbers; a call of HT (p_ht >= 0.5) thus means ``perceived >= threshold_r``. The thresholds are
spread evenly over READER_THRESHOLDS (conservative readers: the paper's neurologists had 28-57%
sensitivity and 78-95% specificity) and shuffled over the reader names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit

SHARED_NOISE_SD = 0.8
OWN_NOISE_SD = 0.85
SLOPE = 1.3
READER_THRESHOLDS = (0.5, 1.45)
P_HT_STEP = 0.05


def reader_names(n_readers: int) -> list[str]:
    """``["Clinician 1", ..., "Clinician N"]``."""
    return [f"Clinician {r + 1}" for r in range(n_readers)]


def simulate_readers(
    scans: pd.DataFrame, patients: pd.DataFrame, n_readers: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Every reader's probability of HT for every scan.

    Args:
        scans: scan truth table with ``scan_id`` and ``p_image_scan``.
        patients: patient truth table (unused columns are ignored; kept for future reader effects).
        n_readers: number of readers.
        rng: random generator.

    Returns:
        Long table ``scan_id, reader, p_ht`` (schemas/readers.schema.yaml), scans in table order.
    """
    del patients
    evidence = logit(np.clip(scans["p_image_scan"].to_numpy(dtype=float), 1e-6, 1 - 1e-6))
    thresholds = (
        np.linspace(*READER_THRESHOLDS, n_readers)
        if n_readers > 1
        else np.array([np.mean(READER_THRESHOLDS)])
    )
    thresholds = rng.permutation(thresholds)
    shared = rng.normal(0.0, SHARED_NOISE_SD, len(scans))
    own = rng.normal(0.0, OWN_NOISE_SD, (n_readers, len(scans)))
    perceived = evidence[None, :] + shared[None, :] + own
    p_ht = expit(SLOPE * (perceived - thresholds[:, None]))
    p_ht = np.clip(np.round(p_ht / P_HT_STEP) * P_HT_STEP, 0.0, 1.0)
    names = reader_names(n_readers)
    return pd.DataFrame(
        {
            "scan_id": np.tile(scans["scan_id"].to_numpy(), n_readers),
            "reader": np.repeat(names, len(scans)),
            "p_ht": np.round(p_ht.ravel(), 2),
        }
    )

"""Agreement between raters' HT calls: percent agreement, Cohen's and Fleiss' kappa.

Percent agreement is the paper's "consistency rate": the share of scans on which two raters make
the same call (0.61-0.87 among the neurologists, 0.51-0.59 between them and CTNet).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def _calls_frame(calls: Mapping[str, ArrayLike] | pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame({name: np.asarray(c) for name, c in calls.items()})
    frame = frame.astype({name: int for name in frame.columns if frame[name].dtype == bool})
    if frame.isna().any().any():
        raise ValueError("calls contain missing values: every rater must call every scan")
    if not frame.isin([0, 1]).all().all():
        raise ValueError("calls must be 0/1 (or booleans)")
    return frame.astype(int)


def percent_agreement(calls: Mapping[str, ArrayLike] | pd.DataFrame) -> pd.DataFrame:
    """Share of scans on which each pair of raters agrees.

    Args:
        calls: rater name -> 0/1 call per scan (same scans, same order), or a DataFrame with one
            column per rater.

    Returns:
        Square DataFrame rater x rater with values in [0, 1] (diagonal 1).
    """
    frame = _calls_frame(calls)
    values = frame.to_numpy()
    agree = (values[:, :, None] == values[:, None, :]).mean(axis=0)
    return pd.DataFrame(agree, index=frame.columns, columns=frame.columns)


def cohen_kappa_matrix(calls: Mapping[str, ArrayLike] | pd.DataFrame) -> pd.DataFrame:
    """Cohen's kappa (:func:`sklearn.metrics.cohen_kappa_score`) for each pair of raters.

    Args:
        calls: rater name -> 0/1 call per scan, or a DataFrame with one column per rater.

    Returns:
        Square DataFrame rater x rater (diagonal 1; NaN for a pair whose chance agreement is 1,
        i.e. both raters give one and the same call to every scan).
    """
    from sklearn.metrics import cohen_kappa_score

    frame = _calls_frame(calls)
    names = list(frame.columns)
    kappa = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            with np.errstate(divide="ignore", invalid="ignore"):
                value = cohen_kappa_score(frame[a], frame[b], labels=[0, 1], replace_undefined_by=np.nan)
            kappa.loc[a, b] = kappa.loc[b, a] = value
    return kappa


def fleiss_kappa(calls: Mapping[str, ArrayLike] | pd.DataFrame) -> float:
    """Fleiss' kappa of several raters' calls (statsmodels, ``method="fleiss"``).

    Args:
        calls: rater name -> 0/1 call per scan, or a DataFrame with one column per rater.

    Returns:
        Fleiss' kappa over all raters and scans.
    """
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

    frame = _calls_frame(calls)
    counts, _ = aggregate_raters(frame.to_numpy(), n_cat=2)
    return float(sm_fleiss_kappa(counts, method="fleiss"))

"""The known risk model of the synthetic cohort: how each factor moves the log-odds of HT.

Everything the label depends on is here, so the truth files, the docs and the tests share one
definition. The linear predictor of haemorrhagic transformation (HT) for a patient is::

    eta = INTERCEPT
        + VOLUME_LOG_ODDS      * z_volume          # z_volume = (ln(infarct ml) - ln 25) / 1.0
        + HDA_LOG_ODDS         * hyperdense_artery # 0/1, hyperdense MCA sign
        + LEUKOARAIOSIS_LOG_ODDS * leukoaraiosis   # grade 0-3 (Fazekas-like)
        + AGE_LOG_ODDS_PER_10Y * (age - 66.6) / 10
        + MEDICATION_LOG_ODDS[medication]          # anticoagulant, thrombolytic, antiplatelet, ...
    p_true = 1 / (1 + exp(-eta));   label ~ Bernoulli(p_true)

The factors are drawn as follows (``sample_*`` functions below):

- age: integer years, round(Normal(66.6, 12)) clipped to [AGE_MIN, AGE_MAX];
- sex: M with probability 0.68 (no effect on risk);
- medication: categorical with MEDICATION_PROBABILITIES, independent of everything else;
- z_volume: standard normal truncated to [Z_VOLUME_MIN, Z_VOLUME_MAX] (1 to 150 ml);
- hyperdense_artery | z_volume ~ Bernoulli(sigmoid(HDA_INTERCEPT + HDA_SLOPE * z_volume));
- leukoaraiosis | age: ordinal logistic, P(grade >= g) = sigmoid(LA_AGE_SLOPE * (age - 66.6) / 10
  - LA_CUTPOINTS[g - 1]).

``p_image`` is P(HT | z_volume, hyperdense_artery, leukoaraiosis): the clinical factors are
integrated out *exactly* (no Monte Carlo) by summing over the discrete age grid and the five
medication classes, with age weighted by P(age | leukoaraiosis) (Bayes' rule: older patients have
more leukoaraiosis, so the image tells something about age). It is the ceiling of a model that sees
the image factors perfectly. ``p_image_scan`` is the same for one scan: where the infarct is not
visible on that scan (HU drop below VISIBLE_HU_DROP) the infarct volume is integrated out too,
over P(z_volume | hyperdense_artery), on a fine grid (trapezoid rule, 2001 points).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from scipy.stats import norm

AGE_MEAN = 66.6
AGE_SD = 12.0
AGE_MIN = 20
AGE_MAX = 99
MALE_PROBABILITY = 0.68

MEDICATIONS = ("antiplatelet", "anticoagulant", "thrombolytic", "none", "not_available")
MEDICATION_PROBABILITIES = (0.40, 0.12, 0.18, 0.22, 0.08)

# Infarct volume: ln(ml) = ln(25) + z_volume, z_volume ~ N(0, 1) truncated to 1-150 ml.
VOLUME_MEDIAN_ML = 25.0
VOLUME_LOG_SD = 1.0
VOLUME_MIN_ML = 1.0
VOLUME_MAX_ML = 150.0
Z_VOLUME_MIN = float(np.log(VOLUME_MIN_ML / VOLUME_MEDIAN_ML) / VOLUME_LOG_SD)
Z_VOLUME_MAX = float(np.log(VOLUME_MAX_ML / VOLUME_MEDIAN_ML) / VOLUME_LOG_SD)

# Larger infarcts more often come from a proximal (M1) occlusion, hence the hyperdense MCA sign.
HDA_INTERCEPT = -1.0
HDA_SLOPE = 1.0

# Leukoaraiosis grade 0-3 rises with age (ordinal logistic cut-points).
LA_AGE_SLOPE = 0.9
LA_CUTPOINTS = (-0.2, 1.3, 2.8)

# Log-odds of HT. Magnitudes follow the direction of the clinical literature (infarct size and
# hyperdense artery are the strongest imaging predictors; anticoagulation and thrombolysis raise the
# bleeding risk); they were tuned so prevalence is ~40% and the image-only oracle AUC ~0.85.
INTERCEPT = -1.35
VOLUME_LOG_ODDS = 1.75
HDA_LOG_ODDS = 0.9
LEUKOARAIOSIS_LOG_ODDS = 0.35
AGE_LOG_ODDS_PER_10Y = 0.25
MEDICATION_LOG_ODDS = {
    "antiplatelet": 0.2,
    "anticoagulant": 0.9,
    "thrombolytic": 0.8,
    "none": 0.0,
    "not_available": 0.0,
}

# Infarct hypodensity grows with time since onset: drop = max * (1 - exp(-hours / tau)).
HU_DROP_MAX_MEAN = 10.0
HU_DROP_MAX_SD = 1.5
HU_DROP_TAU_HOURS = 6.0
# A drop below this is taken as invisible (the noise SD is ~5 HU per voxel).
VISIBLE_HU_DROP = 4.0

_AGE_GRID = np.arange(AGE_MIN, AGE_MAX + 1)
_Z_GRID = np.linspace(Z_VOLUME_MIN, Z_VOLUME_MAX, 2001)


def age_probabilities() -> np.ndarray:
    """P(age = a) for every integer age on AGE_MIN..AGE_MAX (rounded, clipped normal).

    Returns:
        Probabilities aligned with ``np.arange(AGE_MIN, AGE_MAX + 1)``; they sum to 1.
    """
    upper = norm.cdf((_AGE_GRID + 0.5 - AGE_MEAN) / AGE_SD)
    lower = norm.cdf((_AGE_GRID - 0.5 - AGE_MEAN) / AGE_SD)
    # Clipping puts both tails on the end points.
    upper[-1] = 1.0
    lower[0] = 0.0
    return upper - lower


def leukoaraiosis_probabilities(age: np.ndarray) -> np.ndarray:
    """P(leukoaraiosis grade = g | age) for g = 0..3.

    Args:
        age: ages in years, any shape.

    Returns:
        Array of shape ``age.shape + (4,)``.
    """
    age_term = LA_AGE_SLOPE * (np.asarray(age, dtype=float) - AGE_MEAN) / 10.0
    at_least = np.stack([expit(age_term - cut) for cut in LA_CUTPOINTS], axis=-1)
    ones = np.ones(at_least.shape[:-1] + (1,))
    zeros = np.zeros(at_least.shape[:-1] + (1,))
    bounds = np.concatenate([ones, at_least, zeros], axis=-1)
    return bounds[..., :-1] - bounds[..., 1:]


def hda_probability(z_volume: np.ndarray) -> np.ndarray:
    """P(hyperdense artery sign | z_volume)."""
    return expit(HDA_INTERCEPT + HDA_SLOPE * np.asarray(z_volume, dtype=float))


def z_volume_from_ml(volume_ml: np.ndarray) -> np.ndarray:
    """Standardised log infarct volume used by the risk model."""
    return np.log(np.asarray(volume_ml, dtype=float) / VOLUME_MEDIAN_ML) / VOLUME_LOG_SD


def volume_ml_from_z(z_volume: np.ndarray) -> np.ndarray:
    """Inverse of :func:`z_volume_from_ml`."""
    return VOLUME_MEDIAN_ML * np.exp(VOLUME_LOG_SD * np.asarray(z_volume, dtype=float))


def image_log_odds(
    z_volume: np.ndarray, hyperdense_artery: np.ndarray, leukoaraiosis: np.ndarray
) -> np.ndarray:
    """The image part of the linear predictor (without the intercept)."""
    return (
        VOLUME_LOG_ODDS * np.asarray(z_volume, dtype=float)
        + HDA_LOG_ODDS * np.asarray(hyperdense_artery, dtype=float)
        + LEUKOARAIOSIS_LOG_ODDS * np.asarray(leukoaraiosis, dtype=float)
    )


def clinical_log_odds(age: np.ndarray, medication: np.ndarray) -> np.ndarray:
    """The clinical part of the linear predictor (age and medication; sex has no effect)."""
    medication_term = np.array([MEDICATION_LOG_ODDS[str(m)] for m in np.ravel(medication)], dtype=float)
    return AGE_LOG_ODDS_PER_10Y * (np.asarray(age, dtype=float) - AGE_MEAN) / 10.0 + medication_term.reshape(
        np.shape(medication)
    )


def p_true(
    z_volume: np.ndarray,
    hyperdense_artery: np.ndarray,
    leukoaraiosis: np.ndarray,
    age: np.ndarray,
    medication: np.ndarray,
) -> np.ndarray:
    """The true probability of HT given every factor (the label is drawn from it)."""
    eta = (
        INTERCEPT
        + image_log_odds(z_volume, hyperdense_artery, leukoaraiosis)
        + clinical_log_odds(age, medication)
    )
    return expit(eta)


def _clinical_average(image_eta: np.ndarray, leukoaraiosis: np.ndarray) -> np.ndarray:
    """E[sigmoid(INTERCEPT + image_eta + clinical) | leukoaraiosis] over age and medication."""
    image_eta = np.asarray(image_eta, dtype=float)
    grade = np.asarray(leukoaraiosis, dtype=int)
    # P(age | grade) by Bayes' rule on the discrete age grid.
    joint = age_probabilities()[:, None] * leukoaraiosis_probabilities(_AGE_GRID)  # [n_age, 4]
    age_given_grade = joint / joint.sum(axis=0, keepdims=True)
    age_term = AGE_LOG_ODDS_PER_10Y * (_AGE_GRID - AGE_MEAN) / 10.0
    medication_term = np.array([MEDICATION_LOG_ODDS[m] for m in MEDICATIONS])
    medication_weight = np.array(MEDICATION_PROBABILITIES)
    clinical = age_term[:, None] + medication_term[None, :]  # [n_age, n_med]
    weight = age_given_grade[:, grade].T[:, :, None] * medication_weight[None, None, :]  # [n, n_age, n_med]
    probability = expit(INTERCEPT + image_eta.reshape(-1, 1, 1) + clinical[None])
    return (weight * probability).sum(axis=(1, 2)).reshape(image_eta.shape)


def p_image(z_volume: np.ndarray, hyperdense_artery: np.ndarray, leukoaraiosis: np.ndarray) -> np.ndarray:
    """P(HT | image factors), clinical factors integrated out exactly (see module docstring)."""
    z_volume = np.atleast_1d(np.asarray(z_volume, dtype=float))
    eta = image_log_odds(z_volume, hyperdense_artery, leukoaraiosis)
    return _clinical_average(eta, np.broadcast_to(leukoaraiosis, z_volume.shape))


def p_image_without_volume(hyperdense_artery: np.ndarray, leukoaraiosis: np.ndarray) -> np.ndarray:
    """P(HT | hyperdense artery, leukoaraiosis): for scans on which the infarct is not visible.

    The infarct volume is integrated over P(z_volume | hyperdense_artery), proportional to the
    truncated-normal density times P(hyperdense_artery | z_volume), with the trapezoid rule.
    """
    hda = np.atleast_1d(np.asarray(hyperdense_artery, dtype=int))
    grade = np.broadcast_to(np.asarray(leukoaraiosis, dtype=int), hda.shape)
    density = norm.pdf(_Z_GRID)
    p_hda = hda_probability(_Z_GRID)
    result = np.empty(hda.shape, dtype=float)
    for hda_value in (0, 1):
        weight = density * (p_hda if hda_value else 1.0 - p_hda)
        weight = weight / np.trapezoid(weight, _Z_GRID)
        for g in range(4):
            selected = (hda == hda_value) & (grade == g)
            if not selected.any():
                continue
            eta = image_log_odds(_Z_GRID, hda_value, g)
            curve = _clinical_average(eta, np.full(_Z_GRID.shape, g))
            result[selected] = np.trapezoid(weight * curve, _Z_GRID)
    return result


def hu_drop(hours_since_onset: np.ndarray, drop_max: np.ndarray) -> np.ndarray:
    """Infarct hypodensity (HU below normal parenchyma) at a time after stroke onset."""
    return np.asarray(drop_max) * (1.0 - np.exp(-np.asarray(hours_since_onset) / HU_DROP_TAU_HOURS))


__all__ = [
    "MEDICATIONS",
    "MEDICATION_PROBABILITIES",
    "age_probabilities",
    "leukoaraiosis_probabilities",
    "hda_probability",
    "z_volume_from_ml",
    "volume_ml_from_z",
    "image_log_odds",
    "clinical_log_odds",
    "p_true",
    "p_image",
    "p_image_without_volume",
    "hu_drop",
]

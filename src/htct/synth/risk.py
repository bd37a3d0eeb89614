"""The known risk model of the synthetic cohort: how each factor moves the log-odds of HT.

Everything the label depends on is here, so the truth files, the docs and the tests share one
definition. The linear predictor of haemorrhagic transformation (HT) for a patient is::

    eta = intercept
        + VOLUME_LOG_ODDS      * z_volume          # z_volume = (ln(infarct ml) - ln 25) / 1.0
        + HDA_LOG_ODDS         * hyperdense_artery # 0/1, hyperdense MCA sign
        + LEUKOARAIOSIS_LOG_ODDS * leukoaraiosis   # grade 0-3 (Fazekas-like)
        + AGE_LOG_ODDS_PER_10Y * (age - AGE_REFERENCE) / 10
        + MEDICATION_LOG_ODDS[medication]          # anticoagulant, thrombolytic, antiplatelet, ...
    p_true = 1 / (1 + exp(-eta));   label ~ Bernoulli(p_true)

The effect sizes (the constants in capitals) are fixed. What a study fixes by design — cohort
size, the clinical marginals, the HT prevalence, scans per patient — is a :class:`CohortDesign`
(default :data:`PAPER_DESIGN`, Zhang et al. 2026), and the intercept is solved so that the
expected prevalence equals the design's (:class:`RiskModel`).

The factors are drawn as follows (``htct.synth.cohort``):

- age: integer years, round(Normal(design.age_mean, design.age_sd)) clipped to [AGE_MIN, AGE_MAX];
- sex: M with probability design.male_probability (no effect on risk);
- medication: categorical with design.medication_probabilities, independent of everything else;
- z_volume: standard normal truncated to [Z_VOLUME_MIN, Z_VOLUME_MAX] (1 to 150 ml);
- hyperdense_artery | z_volume ~ Bernoulli(sigmoid(HDA_INTERCEPT + HDA_SLOPE * z_volume));
- leukoaraiosis | age: ordinal logistic, P(grade >= g) = sigmoid(LA_AGE_SLOPE * (age - AGE_REFERENCE)
  / 10 - LA_CUTPOINTS[g - 1]).

``p_image`` is P(HT | z_volume, hyperdense_artery, leukoaraiosis): the clinical factors are
integrated out *exactly* (no Monte Carlo) by summing over the discrete age grid and the five
medication classes, with age weighted by P(age | leukoaraiosis) (Bayes' rule: older patients have
more leukoaraiosis, so the image tells something about age). It is the ceiling of a model that sees
the image factors perfectly. ``p_image_scan`` is the same for one scan: where the infarct is not
visible on that scan (HU drop below VISIBLE_HU_DROP) the infarct volume is integrated out too,
over P(z_volume | hyperdense_artery), on a fine grid (trapezoid rule, 2001 points).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import norm

AGE_MIN = 20
AGE_MAX = 99
# The age at which the age and leukoaraiosis terms are zero: part of the risk model's definition
# (the effect sizes were set around it), not a property of any cohort.
AGE_REFERENCE = 66.6

MEDICATIONS = ("antiplatelet", "anticoagulant", "thrombolytic", "none", "not_available")

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
# bleeding risk); they were set (before the paper's design was matched) so that an older cohort
# (age 66.6 +- 12, 12% anticoagulated) had a prevalence of ~40% and an image-only oracle AUC of
# ~0.85. They are not estimates, and they are not changed to match the paper's results.
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


@dataclass(frozen=True)
class CohortDesign:
    """What a study fixes by design: the clinical marginals, HT prevalence and scans per patient.

    Attributes:
        age_mean: mean age in years (before rounding and clipping to AGE_MIN..AGE_MAX).
        age_sd: standard deviation of age in years.
        male_probability: share of men (sex has no effect on risk).
        medication_probabilities: shares of MEDICATIONS, in that order; they sum to 1.
        prevalence: expected share of patients with HT; the intercept is solved for it.
        scans_per_patient: probabilities of 1, 2 and 3 scans per patient.
        source: where the numbers come from.
    """

    age_mean: float
    age_sd: float
    male_probability: float
    medication_probabilities: tuple[float, ...]
    prevalence: float
    scans_per_patient: tuple[float, float, float]
    source: str = ""

    def __post_init__(self) -> None:
        for name, shares in (
            ("medication_probabilities", self.medication_probabilities),
            ("scans_per_patient", self.scans_per_patient),
        ):
            if min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-6:
                raise ValueError(f"design {name} must be non-negative and sum to 1, got {shares}")
        if len(self.medication_probabilities) != len(MEDICATIONS):
            raise ValueError(
                f"design medication_probabilities needs {len(MEDICATIONS)} shares ({MEDICATIONS})"
            )
        if len(self.scans_per_patient) != 3:
            raise ValueError("design scans_per_patient needs the probabilities of 1, 2 and 3 scans")
        if not 0 < self.prevalence < 1 or not 0 <= self.male_probability <= 1 or self.age_sd <= 0:
            raise ValueError("design prevalence must be in (0, 1), male_probability in [0, 1], age_sd > 0")

    @property
    def mean_scans_per_patient(self) -> float:
        """Expected number of scans per patient."""
        return float(np.dot((1, 2, 3), self.scans_per_patient))

    @classmethod
    def from_config(cls, design: dict) -> CohortDesign:
        """The design from config.yaml ``synthetic.design`` (keys as in schemas/config.schema.yaml)."""
        medication = design["medication"]
        return cls(
            age_mean=float(design["age_mean"]),
            age_sd=float(design["age_sd"]),
            male_probability=float(design["male_share"]),
            medication_probabilities=tuple(float(medication[m]) for m in MEDICATIONS),
            prevalence=float(design["ht_prevalence"]),
            scans_per_patient=tuple(float(p) for p in design["scans_per_patient"]),
            source=str(design.get("source", "")),
        )

    def to_config(self) -> dict:
        """Inverse of :meth:`from_config`."""
        return {
            "age_mean": self.age_mean,
            "age_sd": self.age_sd,
            "male_share": self.male_probability,
            "medication": dict(zip(MEDICATIONS, self.medication_probabilities, strict=True)),
            "ht_prevalence": self.prevalence,
            "scans_per_patient": list(self.scans_per_patient),
            "source": self.source,
        }


# The paper's design (Zhang et al., Front. Neurosci. 2026), Table 1 (all 474 patients) and abstract.
# The paper prints both "231 HT and 243 non-HT" (abstract) and the reverse elsewhere; we take the
# abstract's 231 / 474. 613 scans of 474 patients (1.293 per patient): 1, 2 or 3 scans with
# probabilities (0.757, 0.193, 0.05) give that mean (the paper does not give the distribution).
PAPER_DESIGN = CohortDesign(
    age_mean=62.45,
    age_sd=11.85,
    male_probability=0.7405,
    medication_probabilities=(0.6624, 0.0253, 0.2131, 0.0865, 0.0127),
    prevalence=231 / 474,
    scans_per_patient=(0.757, 0.193, 0.05),
    source="Zhang et al. 2026, Table 1 (age, sex, medication) and abstract (231 HT of 474; 613 scans)",
)


def age_probabilities(age_mean: float, age_sd: float) -> np.ndarray:
    """P(age = a) for every integer age on AGE_MIN..AGE_MAX (rounded, clipped normal).

    Args:
        age_mean: mean of the normal before rounding.
        age_sd: its standard deviation.

    Returns:
        Probabilities aligned with ``np.arange(AGE_MIN, AGE_MAX + 1)``; they sum to 1.
    """
    upper = norm.cdf((_AGE_GRID + 0.5 - age_mean) / age_sd)
    lower = norm.cdf((_AGE_GRID - 0.5 - age_mean) / age_sd)
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
    age_term = LA_AGE_SLOPE * (np.asarray(age, dtype=float) - AGE_REFERENCE) / 10.0
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
    age_term = AGE_LOG_ODDS_PER_10Y * (np.asarray(age, dtype=float) - AGE_REFERENCE) / 10.0
    return age_term + medication_term.reshape(np.shape(medication))


def _z_density() -> np.ndarray:
    """The truncated standard normal density of z_volume on _Z_GRID (integrates to 1)."""
    density = norm.pdf(_Z_GRID)
    return density / np.trapezoid(density, _Z_GRID)


@dataclass(frozen=True)
class RiskModel:
    """The risk model for one design: the fixed effect sizes and the intercept solved for its prevalence.

    Attributes:
        design: the cohort design.
        intercept: the intercept of the linear predictor; by default solved (:meth:`solve_intercept`)
            so that the expected prevalence under the design equals ``design.prevalence``.

    Example:
        >>> model = RiskModel(PAPER_DESIGN)
        >>> round(model.expected_prevalence(), 4) == round(PAPER_DESIGN.prevalence, 4)
        True
    """

    design: CohortDesign = PAPER_DESIGN
    intercept: float = field(default=float("nan"))

    def __post_init__(self) -> None:
        if np.isnan(self.intercept):
            object.__setattr__(self, "intercept", self.solve_intercept())

    @cached_property
    def age_probabilities(self) -> np.ndarray:
        """P(age) on AGE_MIN..AGE_MAX for this design."""
        return age_probabilities(self.design.age_mean, self.design.age_sd)

    def _clinical_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Clinical log-odds [n_age, n_med] and the joint weights P(age, grade) [n_age, 4] x P(med)."""
        age_term = AGE_LOG_ODDS_PER_10Y * (_AGE_GRID - AGE_REFERENCE) / 10.0
        medication_term = np.array([MEDICATION_LOG_ODDS[m] for m in MEDICATIONS])
        joint = self.age_probabilities[:, None] * leukoaraiosis_probabilities(_AGE_GRID)  # [n_age, 4]
        return age_term[:, None] + medication_term[None, :], joint

    def expected_prevalence(self, intercept: float | None = None) -> float:
        """E[p_true] under the design: the expected share of patients with HT, computed exactly on grids.

        Sums over integer ages, leukoaraiosis grades, medications and the artery sign, and integrates
        the infarct volume over its truncated normal (trapezoid rule on 2001 points).
        """
        intercept = self.intercept if intercept is None else intercept
        clinical, joint = self._clinical_grid()
        medication_weight = np.array(self.design.medication_probabilities)
        z_density = _z_density()
        p_hda = hda_probability(_Z_GRID)
        total = 0.0
        for grade in range(4):
            for hda in (0, 1):
                z_weight = z_density * (p_hda if hda else 1.0 - p_hda)
                eta = intercept + image_log_odds(_Z_GRID, hda, grade)  # [n_z]
                probability = expit(eta[None, None, :] + clinical[:, :, None])  # [n_age, n_med, n_z]
                over_z = np.trapezoid(probability * z_weight, _Z_GRID, axis=-1)  # [n_age, n_med]
                total += float((joint[:, grade, None] * medication_weight[None, :] * over_z).sum())
        return total

    def solve_intercept(self) -> float:
        """The intercept whose expected prevalence under the design is ``design.prevalence``."""
        return float(
            brentq(lambda b: self.expected_prevalence(b) - self.design.prevalence, -15.0, 15.0, xtol=1e-10)
        )

    def p_true(
        self,
        z_volume: np.ndarray,
        hyperdense_artery: np.ndarray,
        leukoaraiosis: np.ndarray,
        age: np.ndarray,
        medication: np.ndarray,
    ) -> np.ndarray:
        """The true probability of HT given every factor (the label is drawn from it)."""
        eta = (
            self.intercept
            + image_log_odds(z_volume, hyperdense_artery, leukoaraiosis)
            + clinical_log_odds(age, medication)
        )
        return expit(eta)

    def _clinical_average(self, image_eta: np.ndarray, leukoaraiosis: np.ndarray) -> np.ndarray:
        """E[sigmoid(intercept + image_eta + clinical) | leukoaraiosis] over age and medication."""
        image_eta = np.asarray(image_eta, dtype=float)
        grade = np.asarray(leukoaraiosis, dtype=int)
        clinical, joint = self._clinical_grid()
        # P(age | grade) by Bayes' rule on the discrete age grid.
        age_given_grade = joint / joint.sum(axis=0, keepdims=True)
        medication_weight = np.array(self.design.medication_probabilities)
        weight = (
            age_given_grade[:, grade].T[:, :, None] * medication_weight[None, None, :]
        )  # [n, n_age, n_med]
        probability = expit(self.intercept + image_eta.reshape(-1, 1, 1) + clinical[None])
        return (weight * probability).sum(axis=(1, 2)).reshape(image_eta.shape)

    def p_image(
        self, z_volume: np.ndarray, hyperdense_artery: np.ndarray, leukoaraiosis: np.ndarray
    ) -> np.ndarray:
        """P(HT | image factors), clinical factors integrated out exactly (see module docstring)."""
        z_volume = np.atleast_1d(np.asarray(z_volume, dtype=float))
        eta = image_log_odds(z_volume, hyperdense_artery, leukoaraiosis)
        return self._clinical_average(eta, np.broadcast_to(leukoaraiosis, z_volume.shape))

    def p_image_without_volume(self, hyperdense_artery: np.ndarray, leukoaraiosis: np.ndarray) -> np.ndarray:
        """P(HT | hyperdense artery, leukoaraiosis): for scans on which the infarct is not visible.

        The infarct volume is integrated over P(z_volume | hyperdense_artery), proportional to the
        truncated-normal density times P(hyperdense_artery | z_volume), with the trapezoid rule.
        """
        hda = np.atleast_1d(np.asarray(hyperdense_artery, dtype=int))
        grade = np.broadcast_to(np.asarray(leukoaraiosis, dtype=int), hda.shape)
        return self._without_volume_table[hda, grade]

    @cached_property
    def _without_volume_table(self) -> np.ndarray:
        """:meth:`p_image_without_volume` for every (artery sign 0/1, grade 0-3): [2, 4]."""
        density = norm.pdf(_Z_GRID)
        p_hda = hda_probability(_Z_GRID)
        table = np.empty((2, 4))
        for hda_value in (0, 1):
            weight = density * (p_hda if hda_value else 1.0 - p_hda)
            weight = weight / np.trapezoid(weight, _Z_GRID)
            for g in range(4):
                eta = image_log_odds(_Z_GRID, hda_value, g)
                curve = self._clinical_average(eta, np.full(_Z_GRID.shape, g))
                table[hda_value, g] = np.trapezoid(weight * curve, _Z_GRID)
        return table


@lru_cache(maxsize=8)
def risk_model(design: CohortDesign = PAPER_DESIGN) -> RiskModel:
    """The risk model of a design, its intercept solved once per design (a few seconds)."""
    return RiskModel(design)


def hu_drop(hours_since_onset: np.ndarray, drop_max: np.ndarray) -> np.ndarray:
    """Infarct hypodensity (HU below normal parenchyma) at a time after stroke onset."""
    return np.asarray(drop_max) * (1.0 - np.exp(-np.asarray(hours_since_onset) / HU_DROP_TAU_HOURS))


__all__ = [
    "MEDICATIONS",
    "PAPER_DESIGN",
    "CohortDesign",
    "RiskModel",
    "risk_model",
    "age_probabilities",
    "leukoaraiosis_probabilities",
    "hda_probability",
    "z_volume_from_ml",
    "volume_ml_from_z",
    "image_log_odds",
    "clinical_log_odds",
    "hu_drop",
]

"""The clinical-only model and CTNet's late fusion with the clinical variables.

**Clinical model** (``clinical``): a logistic regression (scikit-learn, L2 with C = 1, the intercept
unpenalised) of HT on the clinical sheet's variables: age in decades, male sex, and one indicator
per medication other than ``none`` (the reference). ``not_available`` medication is its **own
category** (an indicator like the others), not imputed: an unknown medication is information a
user of the sheet has too, and imputing it would claim a treatment the chart does not record.
It is fitted on the training patients; its threshold is Youden's on the validation scans, as for
every model. With ``split.k_folds >= 2`` (no validation part) the validation predictions are out
of fold (fitted on the other folds' patients) and the test predictions come from the fit on every
training patient.

**Late fusion** (``ctnet_clinical``): a logistic regression on CTNet's logit and clinical
information, fitted on the **validation** scans only (CTNet's predictions on its own training
patients are over-fitted; its test predictions are never used for fitting, and
:func:`fit_fusion` refuses any test row). Two variants are compared by patient-grouped
cross-validation on the validation scans and the one with the lower out-of-fold log loss is kept:

- ``stacked``: CTNet's logit and the clinical model's logit (three parameters);
- ``full``: CTNet's logit and the clinical variables themselves (seven parameters).

The fusion's validation predictions are the out-of-fold ones (so that its threshold, Youden's on
them, is not chosen on fitted values); its test predictions come from the fit on every validation
scan. Fusion inside CTNet's head (the clinical vector entering the network) would need CTNet to be
retrained per variant; see docs/models.md for why late fusion was chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from htct.errors import HTCTInputError
from htct.evaluate.thresholds import youden_threshold

#: The clinical sheet's medication categories (schemas/clinical.schema.yaml).
MEDICATIONS = ("antiplatelet", "anticoagulant", "thrombolytic", "none", "not_available")
MEDICATION_REFERENCE = "none"
CLINICAL_FEATURES = ("age_per_10y", "male") + tuple(
    f"medication_{m}" for m in MEDICATIONS if m != MEDICATION_REFERENCE
)
CLINICAL_LABEL = "Clinical variables (logistic)"
FUSION_LABEL = "CTNet + clinical (late fusion)"
FUSION_VARIANTS = {
    "stacked": "CTNet's logit + the clinical model's logit",
    "full": "CTNet's logit + age, sex and medication",
}
#: A reference line of the selection table (not a candidate): CTNet's logit alone, recalibrated.
CTNET_ONLY = "ctnet_only"
PREDICTION_COLUMNS = ["patient_id", "scan_id", "split", "y_true", "p_ht", "threshold"]
PROBABILITY_CLIP = 1e-6
IDS = {"patient_id": str, "scan_id": str}


def logit(probability: np.ndarray | pd.Series) -> np.ndarray:
    """Log-odds of probabilities clipped to [1e-6, 1 - 1e-6] (a sigmoid output can round to 0 or 1)."""
    p = np.clip(np.asarray(probability, dtype=float), PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    return np.log(p / (1 - p))


def clinical_design(clinical: pd.DataFrame) -> pd.DataFrame:
    """The clinical model's design matrix, one row per patient (index patient_id).

    Args:
        clinical: the clinical sheet (patient_id, age, sex, medication).

    Returns:
        Columns :data:`CLINICAL_FEATURES`: age in decades, male (0/1) and one 0/1 indicator per
        medication other than ``none``; ``not_available`` is its own category.

    Raises:
        HTCTInputError: a medication outside the sheet's categories or a missing age or sex.
    """
    unknown = sorted(set(clinical["medication"].astype(str)) - set(MEDICATIONS))
    if unknown:
        raise HTCTInputError(
            f"clinical sheet: unknown medication {unknown[0]!r}; allowed: {', '.join(MEDICATIONS)}"
        )
    if clinical[["age", "sex"]].isna().any().any():
        raise HTCTInputError("clinical sheet: the clinical model needs age and sex for every patient")
    design = pd.DataFrame(index=pd.Index(clinical["patient_id"].astype(str), name="patient_id"))
    design["age_per_10y"] = clinical["age"].to_numpy(dtype=float) / 10.0
    design["male"] = (clinical["sex"].to_numpy() == "M").astype(float)
    for medication in MEDICATIONS:
        if medication != MEDICATION_REFERENCE:
            design[f"medication_{medication}"] = (clinical["medication"].to_numpy() == medication).astype(
                float
            )
    return design


def _logistic(x: np.ndarray, y: np.ndarray, c: float) -> LogisticRegression:
    if np.unique(y).size < 2:
        raise HTCTInputError(
            f"the clinical model's fitting data hold only one class ({int(y[0])}): too few patients"
        )
    return LogisticRegression(C=c, max_iter=1000).fit(x, y)


def _coefficients(estimator: LogisticRegression, features: Sequence[str]) -> pd.Series:
    return pd.Series(
        [float(estimator.intercept_[0]), *map(float, estimator.coef_[0])],
        index=["intercept", *features],
        name="coefficient",
    )


@dataclass
class ClinicalModel:
    """The fitted clinical model.

    Attributes:
        coefficients: intercept and one log-odds coefficient per feature of :func:`clinical_design`.
        threshold: Youden's threshold on the validation scans.
        estimator: the scikit-learn fit on the training patients (every one with k folds).
    """

    coefficients: pd.Series
    threshold: float
    estimator: LogisticRegression = field(repr=False)

    def predict(self, clinical: pd.DataFrame) -> pd.Series:
        """P(HT) per patient (index patient_id)."""
        design = clinical_design(clinical)
        return pd.Series(self.estimator.predict_proba(design.to_numpy())[:, 1], index=design.index)


def _scan_rows(scans: pd.DataFrame, clinical: pd.DataFrame, parts: dict[str, str]) -> pd.DataFrame:
    """The scans of the patients in ``parts`` (patient_id -> "val" | "test") with y_true."""
    labels = clinical.set_index("patient_id")["label"]
    rows = scans.loc[scans["patient_id"].isin(parts), ["patient_id", "scan_id"]].copy()
    rows["split"] = rows["patient_id"].map(parts)
    rows["y_true"] = rows["patient_id"].map(labels).astype(int)
    return rows.sort_values(["split", "scan_id"]).reset_index(drop=True)


def fit_clinical(
    clinical: pd.DataFrame, split: pd.DataFrame, scans: pd.DataFrame, c: float = 1.0
) -> tuple[ClinicalModel, pd.DataFrame]:
    """Fit the clinical model on the training patients and predict the validation and test scans.

    Args:
        clinical: the clinical sheet (patient_id, label, age, sex, medication).
        split: ``results/split/split.tsv`` (patient_id, part, fold).
        scans: ``results/split/scans.tsv`` (scan_id, patient_id): the scans that were kept.
        c: inverse L2 strength of scikit-learn's LogisticRegression.

    Returns:
        ``(model, predictions)``; predictions in the format of ``results/predictions/{model}.tsv``
        (one row per validation and test scan; every scan of a patient has the patient's P(HT)).
    """
    clinical = clinical.astype({"patient_id": str})
    design = clinical_design(clinical)
    labels = clinical.set_index("patient_id")["label"].astype(int)
    part = split.set_index("patient_id")["part"]
    train = part.index[part == "train"]
    test = part.index[part == "test"]
    predicted: dict[str, float] = {}
    if (part == "val").any():
        validation = part.index[part == "val"]
        estimator = _logistic(design.loc[train].to_numpy(), labels.loc[train].to_numpy(), c)
        val_p = estimator.predict_proba(design.loc[validation].to_numpy())[:, 1]
        predicted.update(zip(validation, val_p, strict=True))
    else:  # k folds: out-of-fold predictions for the validation folds
        validation = train
        fold = split.set_index("patient_id")["fold"]
        for k in sorted(fold.loc[train].unique()):
            held = train[fold.loc[train] == k]
            rest = train[fold.loc[train] != k]
            fold_fit = _logistic(design.loc[rest].to_numpy(), labels.loc[rest].to_numpy(), c)
            predicted.update(
                zip(held, fold_fit.predict_proba(design.loc[held].to_numpy())[:, 1], strict=True)
            )
        estimator = _logistic(design.loc[train].to_numpy(), labels.loc[train].to_numpy(), c)
    predicted.update(zip(test, estimator.predict_proba(design.loc[test].to_numpy())[:, 1], strict=True))
    rows = _scan_rows(scans, clinical, {**dict.fromkeys(validation, "val"), **dict.fromkeys(test, "test")})
    rows["p_ht"] = rows["patient_id"].map(predicted)
    val_rows = rows["split"] == "val"
    threshold = youden_threshold(
        rows.loc[val_rows, "y_true"].to_numpy(), rows.loc[val_rows, "p_ht"].to_numpy()
    )
    rows["threshold"] = threshold["threshold"]
    model = ClinicalModel(_coefficients(estimator, list(design.columns)), threshold["threshold"], estimator)
    return model, rows[PREDICTION_COLUMNS]


# ----------------------------------------------------------------------------------------------
# Late fusion


def _aligned(ctnet: pd.DataFrame, clinical_predictions: pd.DataFrame) -> pd.DataFrame:
    """CTNet's and the clinical model's predictions of CTNet's scans, side by side.

    The clinical model predicts every kept scan from the chart; a scan CTNet did not predict (none
    in the workflow, where both come from results/split/scans.tsv) is left out, a CTNet scan without
    a clinical prediction is an error.
    """
    merged = ctnet[["patient_id", "scan_id", "split", "y_true", "p_ht"]].merge(
        clinical_predictions[["scan_id", "split", "y_true", "p_ht"]],
        on="scan_id",
        how="left",
        suffixes=("", "_clinical"),
        indicator=True,
    )
    if (merged["_merge"] != "both").any():
        scan = merged.loc[merged["_merge"] != "both", "scan_id"].iloc[0]
        raise ValueError(f"the clinical model has no prediction for CTNet's scan {scan}")
    if not (
        merged["split"].eq(merged["split_clinical"]) & merged["y_true"].eq(merged["y_true_clinical"])
    ).all():
        raise ValueError("CTNet and the clinical model disagree on the split part or label of a scan")
    return merged.drop(columns=["_merge", "split_clinical", "y_true_clinical"]).sort_values("scan_id")


def fusion_features(aligned: pd.DataFrame, clinical: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The fusion's inputs per scan (index scan_id) for ``variant`` (or :data:`CTNET_ONLY`)."""
    features = pd.DataFrame({"ctnet_logit": logit(aligned["p_ht"])}, index=aligned["scan_id"].to_numpy())
    if variant == "stacked":
        features["clinical_logit"] = logit(aligned["p_ht_clinical"])
    elif variant == "full":
        design = clinical_design(clinical.astype({"patient_id": str}))
        features = features.join(
            design.loc[aligned["patient_id"].to_numpy()].set_axis(features.index), how="left"
        )
    elif variant != CTNET_ONLY:
        raise ValueError(f"unknown fusion variant {variant!r}; known: {', '.join(FUSION_VARIANTS)}")
    return features


@dataclass
class FusionModel:
    """The fitted late fusion.

    Attributes:
        variant: the chosen variant (a key of :data:`FUSION_VARIANTS`).
        coefficients: intercept and log-odds coefficients of the final fit.
        threshold: Youden's threshold on the out-of-fold validation predictions.
        selection: per candidate (and CTNet alone, for reference): out-of-fold log loss, Brier
            score and AUC on the validation scans, and which one was chosen.
        out_of_fold: the chosen variant's out-of-fold P(HT) per validation scan (index scan_id).
        fitted_on: the scan IDs the final fit saw (validation only).
        estimator: the scikit-learn fit on every validation scan.
    """

    variant: str
    coefficients: pd.Series
    threshold: float
    selection: pd.DataFrame
    out_of_fold: pd.Series
    fitted_on: list[str]
    estimator: LogisticRegression = field(repr=False)


def _out_of_fold(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int, c: float
) -> np.ndarray:
    """Patient-grouped, stratified out-of-fold predictions (a fold with one class predicts its rate)."""
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    out = np.empty(y.size)
    for fit_rows, held in splitter.split(x, y, groups):
        if np.unique(y[fit_rows]).size < 2:
            out[held] = y[fit_rows].mean()
        else:
            out[held] = (
                LogisticRegression(C=c, max_iter=1000)
                .fit(x[fit_rows], y[fit_rows])
                .predict_proba(x[held])[:, 1]
            )
    return out


def fit_fusion(
    ctnet: pd.DataFrame,
    clinical_predictions: pd.DataFrame,
    clinical: pd.DataFrame,
    n_folds: int = 5,
    seed: int = 2026,
    c: float = 1.0,
) -> FusionModel:
    """Choose and fit the late fusion on the validation scans (never on test scans).

    Args:
        ctnet: CTNet's prediction table (``results/predictions/ctnet.tsv``).
        clinical_predictions: the clinical model's (``results/predictions/clinical.tsv``).
        clinical: the clinical sheet.
        n_folds: cross-validation folds over the validation patients (fewer when a class has fewer
            patients; with fewer than 2 patients in a class nothing is cross-validated and
            ``stacked``, the smaller model, is taken).
        seed: seed of the fold assignment.
        c: inverse L2 strength.

    Returns:
        The :class:`FusionModel`.
    """
    aligned = _aligned(ctnet, clinical_predictions)
    fit_rows = aligned[aligned["split"] == "val"]
    # The fusion must never see a test scan; the line below is what tests/test_clinical.py checks.
    assert not fit_rows["split"].eq("test").any()
    y = fit_rows["y_true"].to_numpy(dtype=int)
    groups = fit_rows["patient_id"].to_numpy()
    per_class = [np.unique(groups[y == k]).size for k in (0, 1)]
    folds = min(n_folds, *per_class)
    rows, out_of_fold = [], {}
    for variant in (CTNET_ONLY, *FUSION_VARIANTS):
        x = fusion_features(fit_rows, clinical, variant).to_numpy()
        row = {"variant": variant, "inputs": FUSION_VARIANTS.get(variant, "CTNet's logit alone (reference)")}
        row |= {
            "n_scans": y.size,
            "n_patients": np.unique(groups).size,
            "n_folds": folds if folds >= 2 else 0,
        }
        if folds >= 2:
            oof = _out_of_fold(x, y, groups, folds, seed, c)
            out_of_fold[variant] = oof
            row |= {
                "cv_log_loss": log_loss(y, oof, labels=[0, 1]),
                "cv_brier": brier_score_loss(y, oof),
                "cv_auc": roc_auc_score(y, oof) if min(per_class) > 0 else np.nan,
            }
        else:
            row |= {"cv_log_loss": np.nan, "cv_brier": np.nan, "cv_auc": np.nan}
        rows.append(row)
    selection = pd.DataFrame(rows)
    candidates = selection[selection["variant"].isin(FUSION_VARIANTS)]
    chosen = "stacked" if folds < 2 else str(candidates.loc[candidates["cv_log_loss"].idxmin(), "variant"])
    selection["chosen"] = selection["variant"] == chosen
    x = fusion_features(fit_rows, clinical, chosen)
    if np.unique(y).size < 2:
        raise HTCTInputError("the fusion's validation scans hold only one class: too few validation patients")
    estimator = LogisticRegression(C=c, max_iter=1000).fit(x.to_numpy(), y)
    oof = out_of_fold.get(chosen, estimator.predict_proba(x.to_numpy())[:, 1])
    threshold = youden_threshold(y, oof)["threshold"]
    return FusionModel(
        variant=chosen,
        coefficients=_coefficients(estimator, list(x.columns)),
        threshold=threshold,
        selection=selection,
        out_of_fold=pd.Series(oof, index=fit_rows["scan_id"].to_numpy()),
        fitted_on=fit_rows["scan_id"].tolist(),
        estimator=estimator,
    )


def fusion_predictions(
    model: FusionModel, ctnet: pd.DataFrame, clinical_predictions: pd.DataFrame, clinical: pd.DataFrame
) -> pd.DataFrame:
    """The fusion's prediction table: out-of-fold on the validation scans, the final fit on the test scans."""
    aligned = _aligned(ctnet, clinical_predictions)
    test = aligned[aligned["split"] == "test"]
    p_test = model.estimator.predict_proba(fusion_features(test, clinical, model.variant).to_numpy())[:, 1]
    rows = aligned[aligned["split"].isin(["val", "test"])][
        ["patient_id", "scan_id", "split", "y_true"]
    ].copy()
    rows["p_ht"] = rows["scan_id"].map(model.out_of_fold).astype(float)
    rows.loc[rows["split"] == "test", "p_ht"] = p_test
    rows["threshold"] = model.threshold
    return rows.sort_values(["split", "scan_id"]).reset_index(drop=True)[PREDICTION_COLUMNS]

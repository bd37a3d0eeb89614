"""Training and prediction: `train_model` for one model (and fold), `load_trained_model` to reuse it."""

from htct.train.data import assign_parts, augment_batch
from htct.train.loop import (
    DEFAULT_TRAIN_CONFIG,
    merge_fold_predictions,
    train_model,
    youden_threshold,
)
from htct.train.predict import FoldEnsemble, TrainedModel, load_trained_model, predict_volumes

__all__ = [
    "DEFAULT_TRAIN_CONFIG",
    "FoldEnsemble",
    "TrainedModel",
    "assign_parts",
    "augment_batch",
    "load_trained_model",
    "merge_fold_predictions",
    "predict_volumes",
    "train_model",
    "youden_threshold",
]

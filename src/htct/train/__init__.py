"""Training and prediction: `train_model` (a :class:`Trainer`) for one model and fold,
`load_trained_model` to reuse it."""

from htct.evaluate.thresholds import youden_threshold
from htct.train.config import TrainConfig, TrainOutputs
from htct.train.data import assign_parts, augment_batch
from htct.train.folds import merge_fold_predictions
from htct.train.predict import FoldEnsemble, TrainedModel, load_trained_model, predict_logits, probabilities
from htct.train.trainer import Trainer, train_model

__all__ = [
    "FoldEnsemble",
    "TrainConfig",
    "TrainOutputs",
    "TrainedModel",
    "Trainer",
    "assign_parts",
    "augment_batch",
    "load_trained_model",
    "merge_fold_predictions",
    "predict_logits",
    "probabilities",
    "train_model",
    "youden_threshold",
]

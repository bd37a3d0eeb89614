"""Load a trained model folder (results/models/{model}) and predict HT probabilities.

A model folder is either one trained model (weights.pt, config.yaml, threshold.json) or, after a
k-fold training (`split.k_folds >= 2`), the fold models in fold0/, fold1/, ... with the threshold
chosen on their pooled out-of-fold validation predictions (threshold.json, rule merge_folds) at the
top level. A k-fold folder loads as a :class:`FoldEnsemble`, which averages the folds' probabilities
exactly as the workflow's test predictions do (`htct.train.loop.merge_fold_predictions`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn import functional as F

from htct.errors import HTCTInputError
from htct.models import create_model

FOLD_DIR = re.compile(r"fold(\d+)")
MODEL_FILES = ("weights.pt", "config.yaml", "threshold.json")
FOLDS_MUST_AGREE = ("model.name", "input_shape", "preprocess")
"""config.yaml entries that must be the same in every fold of an ensemble."""


class FoldEnsemble(nn.Module):
    """The fold models of a k-fold training as one model.

    Its logit is the logit of the mean probability over the folds, logit(mean_k sigmoid(logit_k)),
    so that sigmoid(output) is the mean of the folds' p_ht (as in `merge_fold_predictions`).
    Computed as logsumexp_k(log sigmoid(l_k)) - logsumexp_k(log sigmoid(-l_k)), which stays finite
    when a fold is certain. :func:`htct.attribution.gradcam` averages the members' heatmaps.
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("a FoldEnsemble needs at least one model")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([member(x).float() for member in self.members])
        return torch.logsumexp(F.logsigmoid(logits), dim=0) - torch.logsumexp(F.logsigmoid(-logits), dim=0)


@dataclass
class TrainedModel:
    """A trained model with the configuration it was trained with and its decision threshold.

    For a k-fold model folder `model` is a :class:`FoldEnsemble`, `config` the first fold's
    config.yaml (the folds agree on model, input shape and preprocessing), `threshold` the pooled
    out-of-fold threshold and `fold_dirs` the fold folders in fold order.
    """

    model: nn.Module
    config: dict
    threshold: float
    fold_dirs: tuple[Path, ...] = ()
    model_dir: Path | None = None

    @property
    def preprocess(self) -> dict:
        """The preprocessing parameters the training arrays were made with (config.yaml `preprocess`)."""
        return dict(self.config.get("preprocess") or {})

    @property
    def models(self) -> list[nn.Module]:
        """The single model, or the fold models of an ensemble in fold order."""
        return list(self.model.members) if isinstance(self.model, FoldEnsemble) else [self.model]

    @property
    def n_models(self) -> int:
        """1 for a single model, K for a k-fold ensemble."""
        return len(self.models)


def build_model(config: dict) -> nn.Module:
    """Create the (untrained) model described by a model folder's config.yaml `model:` section."""
    spec = config["model"]
    return create_model(
        spec["name"], in_channels=spec["in_channels"], n_slices=spec["n_slices"], **(spec.get("kwargs") or {})
    )


def _read_config(path: Path) -> dict:
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict) or "model" not in config or "input_shape" not in config:
        raise HTCTInputError(f"{path} is not a trained model's config.yaml (no model: or input_shape:)")
    return config


def _read_threshold(path: Path) -> dict:
    try:
        threshold = json.loads(path.read_text())
        float(threshold["threshold"])
    except (ValueError, KeyError, TypeError):
        raise HTCTInputError(f"{path} holds no threshold; retrain or rerun the rule that wrote it") from None
    return threshold


def _is_pooled(threshold_json: Path) -> bool:
    """Whether threshold.json was written by merge_folds (it records n_folds)."""
    try:
        return "n_folds" in json.loads(threshold_json.read_text())
    except (OSError, ValueError, TypeError):
        return False


def _load_weights(config: dict, weights: Path, device: str | torch.device) -> nn.Module:
    model = build_model(config)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.to(device).eval()


def _entry(config: dict, dotted: str) -> object:
    value: object = config
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def fold_dirs(model_dir: str | Path) -> list[Path]:
    """The fold{k} subfolders of a k-fold model folder, sorted by fold number (empty if none)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    folds = [
        (int(m.group(1)), p) for p in model_dir.iterdir() if p.is_dir() and (m := FOLD_DIR.fullmatch(p.name))
    ]
    return [path for _, path in sorted(folds)]


def load_trained_model(model_dir: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a trained model folder: one model, or the fold models of a k-fold training as an ensemble.

    A folder with weights.pt is one model (weights.pt, config.yaml, threshold.json). A folder
    with fold0/, fold1/, ... subfolders (each with weights.pt and config.yaml) and no weights.pt,
    or a threshold.json from merge_folds (it records n_folds; a weights.pt beside it is left over
    from an earlier training without folds), is a k-fold model: all folds load as a
    :class:`FoldEnsemble` (mean probability) with the folder's own threshold.json, chosen on the
    pooled out-of-fold validation predictions by rule merge_folds (the folds' own thresholds are
    not used).

    Args:
        model_dir: e.g. results/models/ctnet.
        device: where to put the model.

    Returns:
        The model (or ensemble) in eval mode, its config and threshold.

    Raises:
        HTCTInputError: a file is missing, the folds disagree on model, input shape or
            preprocessing, or threshold.json does not match the number of folds.
    """
    model_dir = Path(model_dir)
    folds = fold_dirs(model_dir)
    if not folds or ((model_dir / "weights.pt").is_file() and not _is_pooled(model_dir / "threshold.json")):
        paths = {name: model_dir / name for name in MODEL_FILES}
        for path in paths.values():
            if not path.is_file():
                raise HTCTInputError(
                    f"{path} not found: is {model_dir} a trained model folder (results/models/NAME, "
                    "or one with fold0/, fold1/, ... from a k-fold training)?"
                )
        config = _read_config(paths["config.yaml"])
        threshold = float(_read_threshold(paths["threshold.json"])["threshold"])
        return TrainedModel(
            model=_load_weights(config, paths["weights.pt"], device),
            config=config,
            threshold=threshold,
            model_dir=model_dir,
        )

    names = ", ".join(path.name for path in folds)
    for fold in folds:
        for name in ("weights.pt", "config.yaml"):
            if not (fold / name).is_file():
                raise HTCTInputError(
                    f"{fold / name} not found: the k-fold model {model_dir} ({names}) is incomplete; "
                    "rerun its train_fold jobs"
                )
    threshold_json = model_dir / "threshold.json"
    if not threshold_json.is_file():
        raise HTCTInputError(
            f"{threshold_json} not found: {model_dir} holds k-fold models ({names}) but not their pooled "
            f"out-of-fold threshold; rerun the merge_folds rule (snakemake results/models/{model_dir.name}/threshold.json)"
        )
    pooled = _read_threshold(threshold_json)
    n_folds = pooled.get("n_folds")
    if n_folds is not None and int(n_folds) != len(folds):
        raise HTCTInputError(
            f"{threshold_json} was chosen on {n_folds} folds but {model_dir} holds {len(folds)} ({names}); "
            "rerun the merge_folds rule"
        )
    configs = [_read_config(fold / "config.yaml") for fold in folds]
    for key in FOLDS_MUST_AGREE:
        values = [_entry(config, key) for config in configs]
        if any(value != values[0] for value in values[1:]):
            differing = "; ".join(f"{fold.name}: {value}" for fold, value in zip(folds, values, strict=True))
            raise HTCTInputError(
                f"the folds of {model_dir} disagree on {key} ({differing}); "
                "they are not one k-fold training: retrain the folds with one config"
            )
    ensemble = FoldEnsemble(
        [
            _load_weights(config, fold / "weights.pt", device)
            for config, fold in zip(configs, folds, strict=True)
        ]
    ).eval()
    return TrainedModel(
        model=ensemble,
        config=configs[0],
        threshold=float(pooled["threshold"]),
        fold_dirs=tuple(folds),
        model_dir=model_dir,
    )


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    volumes: np.ndarray,
    rows: np.ndarray | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """The model's HT logit per scan (eval mode; bf16 autocast on CUDA).

    Args:
        model: the model (put in eval mode).
        volumes: [N, C, D, H, W] array (a memory map is fine), windowed to [0, 1].
        rows: rows of `volumes` to predict; all when None.
        batch_size: scans per forward pass.
        device: device of the model.

    Returns:
        float64 logits, one per row.
    """
    model.eval()
    device = torch.device(device)
    rows = np.arange(len(volumes)) if rows is None else np.asarray(rows)
    logits = []
    for start in range(0, len(rows), batch_size):
        batch = torch.from_numpy(np.asarray(volumes[rows[start : start + batch_size]], dtype=np.float32))
        batch = batch.to(device, non_blocking=True)
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                output = model(batch)
        else:
            output = model(batch)
        logits.append(output.float().squeeze(1).cpu().numpy())
    return np.concatenate(logits).astype(np.float64) if logits else np.zeros(0)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """HT probability per scan from :func:`predict_logits`' logits, as float64.

    torch's float32 sigmoid, as before predict_logits existed: the same p_ht to the last bit.
    """
    return torch.sigmoid(torch.from_numpy(np.asarray(logits).astype(np.float32))).numpy().astype(np.float64)

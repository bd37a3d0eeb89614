"""Load a trained model folder (results/models/{model}) and predict HT probabilities."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from htct.errors import HTCTInputError
from htct.models import create_model


@dataclass
class TrainedModel:
    """A trained model with the configuration it was trained with and its decision threshold."""

    model: nn.Module
    config: dict
    threshold: float

    @property
    def preprocess(self) -> dict:
        """The preprocessing parameters the training arrays were made with (config.yaml `preprocess`)."""
        return dict(self.config.get("preprocess") or {})


def build_model(config: dict) -> nn.Module:
    """Create the (untrained) model described by a model folder's config.yaml `model:` section."""
    spec = config["model"]
    return create_model(
        spec["name"], in_channels=spec["in_channels"], n_slices=spec["n_slices"], **(spec.get("kwargs") or {})
    )


def load_trained_model(model_dir: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Load weights.pt, config.yaml and threshold.json of a trained model folder.

    Args:
        model_dir: e.g. results/models/ctnet.
        device: where to put the model.

    Returns:
        The model in eval mode, its config and threshold.

    Raises:
        HTCTInputError: the folder lacks one of the three files.
    """
    model_dir = Path(model_dir)
    paths = {name: model_dir / name for name in ("weights.pt", "config.yaml", "threshold.json")}
    for path in paths.values():
        if not path.is_file():
            raise HTCTInputError(
                f"{path} not found: is {model_dir} a trained model folder (results/models/NAME)?"
            )
    config = yaml.safe_load(paths["config.yaml"].read_text())
    model = build_model(config)
    state = torch.load(paths["weights.pt"], map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.to(device).eval()
    threshold = float(json.loads(paths["threshold.json"].read_text())["threshold"])
    return TrainedModel(model=model, config=config, threshold=threshold)


@torch.no_grad()
def predict_volumes(
    model: nn.Module,
    volumes: np.ndarray,
    rows: np.ndarray | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """HT probability (sigmoid of the logit) per scan.

    Args:
        model: the model (put in eval mode).
        volumes: [N, C, D, H, W] array (a memory map is fine), windowed to [0, 1].
        rows: rows of `volumes` to predict; all when None.
        batch_size: scans per forward pass.
        device: device of the model.

    Returns:
        float64 probabilities, one per row.
    """
    model.eval()
    device = torch.device(device)
    rows = np.arange(len(volumes)) if rows is None else np.asarray(rows)
    probabilities = []
    for start in range(0, len(rows), batch_size):
        batch = torch.from_numpy(np.asarray(volumes[rows[start : start + batch_size]], dtype=np.float32))
        batch = batch.to(device, non_blocking=True)
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(batch)
        else:
            logits = model(batch)
        probabilities.append(torch.sigmoid(logits.float()).squeeze(1).cpu().numpy())
    return np.concatenate(probabilities).astype(np.float64) if probabilities else np.zeros(0)

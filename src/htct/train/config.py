"""The training configuration as a typed object, and the output files of one training run."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from htct.config import schema_defaults

#: config.yaml ``train:`` keys that concern the workflow, not one training run.
WORKFLOW_KEYS = ("models",)

#: config.yaml ``train:`` key holding per-model training options (e.g. ``{ctnet: {lr: 0.001}}``).
PER_MODEL_KEY = "per_model"


@dataclass(frozen=True)
class TrainConfig:
    """config.yaml ``train:`` for one run (defaults: schemas/config.schema.yaml, the one place for them).

    Attributes:
        device: "auto" (CUDA when present), "cpu" or "cuda".
        epochs: maximum number of epochs.
        batch_size: scans per optimiser step.
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW weight decay.
        patience: epochs without improvement of ``monitor`` before stopping (counted from min_epochs).
        min_epochs: no model selection or early stop before this epoch.
        min_delta: the least change of ``monitor`` that counts as an improvement, in its units (nats
            of validation loss, or AUC), as Keras' ``EarlyStopping(min_delta=...)``: smaller changes
            neither move the selected epoch nor reset the patience.
        monitor: "val_loss" or "val_auc": early stopping and model selection.
        augment: flips, small rotations and shifts, intensity jitter (htct.train.data.augment_batch).
        seed: seeds weight initialisation, data order and augmentation.
        num_workers: DataLoader workers on GPU machines (CPU runs read in the main process).
        warmup_fraction: share of the one-cycle schedule spent rising to the peak rate.
        schedule: "one_cycle" (warm-up, then cosine annealing to zero) or "constant" (the same
            warm-up, then the peak rate to the end).
        model_options: per model name, constructor options on top of the registry's defaults.
        threads: CPU threads for torch (None: torch's default); the job's threads in the workflow.
    """

    device: Literal["auto", "cpu", "cuda"]
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int
    min_epochs: int
    min_delta: float
    monitor: Literal["val_loss", "val_auc"]
    augment: bool
    seed: int
    num_workers: int
    warmup_fraction: float
    schedule: Literal["one_cycle", "constant"]
    model_options: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.monitor not in ("val_loss", "val_auc"):
            raise ValueError(f"train.monitor must be val_loss or val_auc, not {self.monitor!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"train.device must be auto, cpu or cuda, not {self.device!r}")
        if self.schedule not in ("one_cycle", "constant"):
            raise ValueError(f"train.schedule must be one_cycle or constant, not {self.schedule!r}")
        if not self.min_delta >= 0:
            raise ValueError(f"train.min_delta must be >= 0, not {self.min_delta!r}")

    @classmethod
    def from_mapping(
        cls, train: Mapping[str, object] | None = None, model: str | None = None, **overrides: object
    ) -> TrainConfig:
        """The schema's defaults updated by config.yaml ``train:``, then by ``train.per_model[model]``
        (this model's own training options, e.g. CTNet's peak rate), then by ``overrides``.

        Raises:
            ValueError: an unknown key (the message names the closest known one).
        """
        train = {**schema_defaults("train"), **dict(train or {})}
        per_model = dict(train.pop(PER_MODEL_KEY, None) or {})
        own = dict(per_model.get(model) or {}) if model is not None else {}
        if PER_MODEL_KEY in own:
            raise ValueError(f"train.{PER_MODEL_KEY}.{model}: per_model cannot be nested")
        values = {**train, **own, **overrides}
        values.pop(PER_MODEL_KEY, None)
        known = {f.name for f in dataclasses.fields(cls)}
        for key in list(values):
            if key in WORKFLOW_KEYS:
                values.pop(key)
            elif key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"train.{key}: unknown training option{hint}")
        return cls(**values)

    def as_dict(self) -> dict[str, object]:
        """Plain values (for config.yaml of the model folder and the checkpoint fingerprint)."""
        values = dataclasses.asdict(self)
        values["model_options"] = {k: dict(v) for k, v in self.model_options.items()}
        return values


@dataclass(frozen=True)
class TrainOutputs:
    """The files one training run writes (rule train's outputs), plus its checkpoint.

    ``checkpoint`` is deliberately not a rule output: Snakemake deletes the outputs of a failed
    job, and the checkpoint must survive so that the rerun resumes from the last completed epoch.
    """

    weights: Path
    config: Path
    threshold: Path
    epochs: Path
    predictions: Path
    curve: Path  # the training curve's path without extension (.pdf and .png are written)
    checkpoint: Path

    @classmethod
    def in_folder(cls, out_dir: str | Path, predictions: str | Path | None = None) -> TrainOutputs:
        """The conventional names in one model folder (predictions default to its predictions.tsv)."""
        out_dir = Path(out_dir)
        return cls(
            weights=out_dir / "weights.pt",
            config=out_dir / "config.yaml",
            threshold=out_dir / "threshold.json",
            epochs=out_dir / "epochs.tsv",
            predictions=Path(predictions) if predictions else out_dir / "predictions.tsv",
            curve=out_dir / "training_curve",
            checkpoint=out_dir / "checkpoint.pt",
        )

    @classmethod
    def from_rule(cls, output: object) -> TrainOutputs:
        """The paths a rule declares: weights, config, threshold, epochs, predictions, and the curve
        as one path or a multiext (.pdf, .png) pair; the checkpoint goes next to the weights.

        Args:
            output: ``snakemake.output`` (read by attribute) or a mapping with those names.
        """

        def get(name: str) -> object:
            return output[name] if isinstance(output, Mapping) else getattr(output, name)

        paths = {
            name: Path(get(name)) for name in ("weights", "config", "threshold", "epochs", "predictions")
        }
        curve = get("curve")
        curve = [curve] if isinstance(curve, str | Path) else list(curve)
        return cls(
            **paths,
            curve=Path(curve[0]).with_suffix(""),
            checkpoint=paths["weights"].with_name("checkpoint.pt"),
        )

    def make_folders(self) -> None:
        for path in dataclasses.astuple(self):
            Path(path).parent.mkdir(parents=True, exist_ok=True)

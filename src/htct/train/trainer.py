"""Training of one model on one split (or fold): a small trainer whose loop reads at a glance.

:meth:`Trainer.run` is the whole procedure; each step is a method of its own (nnU-Net's trainer
habit): :meth:`~Trainer.configure_optimizers`, :meth:`~Trainer.train_epoch`,
:meth:`~Trainer.validate`, :meth:`~Trainer.select`, :meth:`~Trainer.save_checkpoint` /
:meth:`~Trainer.load_checkpoint` and :meth:`~Trainer.write_outputs`. Early stopping, model
selection and the decision threshold use the validation part only; test scans are only predicted.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn
from tqdm.auto import tqdm

import htct
from htct.evaluate.metrics import auc
from htct.evaluate.thresholds import youden_threshold
from htct.models import model_options
from htct.provenance import training_provenance
from htct.train import checkpoint as ckpt
from htct.train.config import TrainConfig, TrainOutputs
from htct.train.data import BatchReader, ScanParts, assign_parts, loader_options
from htct.train.loop import channels_last, train_step
from htct.train.predict import build_model, predict_logits, probabilities

logger = logging.getLogger("htct.train")

EpochCallback = Callable[[int, dict], None]


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(device)


def configure_torch(on_gpu: bool, threads: int | None = None) -> None:
    """Bit-identical reruns on CPU (deterministic kernels, ``threads`` intra-op threads); GPU runs
    favour speed (cuDNN autotuning, not deterministic)."""
    if on_gpu:
        torch.backends.cudnn.benchmark = True
        return
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also fills every new tensor with NaN, a debugging aid against reads of
    # uninitialised memory: 12% of a CTNet training step on CPU (torch.profiler), and no effect on
    # the results, since every kernel writes its whole output.
    torch.utils.deterministic.fill_uninitialized_memory = False
    if threads:
        torch.set_num_threads(int(threads))


def _plain(obj: object) -> object:
    """Config values as plain YAML types (tuples and numpy scalars become lists and numbers)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, str):
        return str(obj)  # str subclasses such as torch's TorchVersion
    return obj


class WarmupThenConstant:
    """LambdaLR factor: a linear rise from 1/25 of the peak (one-cycle's start) over ``warmup_steps``,
    then the peak rate to the end. A class, not a lambda, so the scheduler's state is checkpointed."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = warmup_steps

    def __call__(self, step: int) -> float:
        if step >= self.warmup_steps:
            return 1.0
        return 1 / 25 + (1 - 1 / 25) * step / self.warmup_steps


class Trainer:
    """Trains ``model_name`` on part == train of a split and writes the rule's outputs.

    Args:
        model_name: a registered model (htct.models.list_models()).
        volumes_npy: results/arrays/volumes.npy, float16 [N, C, D, S, S].
        index_tsv: results/arrays/index.tsv.
        split_tsv: results/split/split.tsv.
        outputs: the files to write (:class:`~htct.train.config.TrainOutputs`).
        config: the training configuration.
        fold: -1 for the single split; k >= 0 trains fold k of a k-fold split.
        preprocess: the arrays' preprocessing parameters, saved with the model so that
            `htct predict` prepares new scans the same way.
        synthetic: whether the cohort is the workflow's synthetic one (config data.synthetic); with
            the cohort size and code version it is saved in config.yaml ``provenance:`` for
            `htct predict` (None: unknown, training outside the workflow).
        epoch_callback: called as ``fn(epoch, row)`` after each epoch's checkpoint (tests use it to
            simulate a crash).
    """

    def __init__(
        self,
        model_name: str,
        volumes_npy: str | Path,
        index_tsv: str | Path,
        split_tsv: str | Path,
        outputs: TrainOutputs,
        config: TrainConfig,
        fold: int = -1,
        preprocess: Mapping | None = None,
        synthetic: bool | None = None,
        epoch_callback: EpochCallback | None = None,
    ) -> None:
        self.model_name, self.outputs, self.config, self.fold = model_name, outputs, config, fold
        self.volumes_npy = Path(volumes_npy)
        self.epoch_callback, self.synthetic = epoch_callback, synthetic
        self.device = resolve_device(config.device)
        self.on_gpu = self.device.type == "cuda"
        configure_torch(self.on_gpu, config.threads)
        self.volumes = np.load(volumes_npy, mmap_mode="r")
        if self.volumes.ndim != 5:
            raise ValueError(f"{volumes_npy}: expected [N, C, slices, S, S], got shape {self.volumes.shape}")
        self.parts: ScanParts = assign_parts(index_tsv, split_tsv, fold=fold)
        self.rows = {part: self.parts.rows(part) for part in ("train", "val", "test")}
        self.model_config = self._model_config(preprocess)
        # A checkpoint is only resumed when it was made with the same model, config and data sizes.
        self.fingerprint = json.dumps(
            {k: self.model_config[k] for k in ("model", "input_shape", "fold", "train", "data")},
            sort_keys=True,
            default=str,
        )
        # All randomness comes from torch: the global generator (weight init, dropout) and two
        # generators of our own (data order, augmentation); numpy's and Python's are not used.
        torch.manual_seed(config.seed)
        self.data_order = torch.Generator().manual_seed(config.seed + 1)
        self.augmentation = torch.Generator().manual_seed(config.seed + 2)
        self.model, self.input_memory_format = channels_last(build_model(self.model_config).to(self.device))
        self.batch_size = min(config.batch_size, len(self.rows["train"]))
        # drop_last: a batch of one scan would break BatchNorm; the dropped scans differ every epoch.
        self.steps_per_epoch = max(1, len(self.rows["train"]) // self.batch_size)
        self.optimizer, self.scheduler, self.criterion = self.configure_optimizers()
        self.state = ckpt.TrainingState()
        self.resumed_from = 0

    # -- set-up -------------------------------------------------------------------------------------

    def _model_config(self, preprocess: Mapping | None) -> dict:
        """The model folder's config.yaml: model, input shape, training config, preprocessing, data."""
        _, in_channels, n_slices, height, width = self.volumes.shape
        y_train = self.parts.labels(self.rows["train"])
        return {
            "model": {
                "name": self.model_name,
                "in_channels": int(in_channels),
                "n_slices": int(n_slices),
                "kwargs": model_options(self.model_name, self.config.model_options.get(self.model_name)),
            },
            "input_shape": [int(in_channels), int(n_slices), int(height), int(width)],
            "fold": self.fold,
            "train": self.config.as_dict(),
            "preprocess": dict(preprocess or {}),
            "data": {
                "volumes": str(self.volumes_npy),
                "n_train": len(self.rows["train"]),
                "n_val": len(self.rows["val"]),
                "n_test": len(self.rows["test"]),
                "n_train_positive": int(y_train.sum()),
            },
        }

    def configure_optimizers(
        self,
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler, nn.Module]:
        """AdamW, the ``schedule`` (warm-up: ``warmup_fraction``) and BCE with ``pos_weight`` = negatives / positives."""
        y_train = self.parts.labels(self.rows["train"])
        n_pos = float(y_train.sum())
        pos_weight = torch.tensor([(len(y_train) - n_pos) / n_pos], device=self.device)
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        total_steps = self.config.epochs * self.steps_per_epoch
        if self.config.schedule == "constant":
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, WarmupThenConstant(max(1, int(self.config.warmup_fraction * total_steps)))
            )
        else:
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=self.config.lr,
                total_steps=total_steps,
                pct_start=self.config.warmup_fraction,
            )
        return optimizer, scheduler, nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    # -- checkpoints --------------------------------------------------------------------------------

    def load_checkpoint(self) -> None:
        """Resume from the checkpoint when it was made with this model, config and data."""
        path = self.outputs.checkpoint
        state = ckpt.load_checkpoint(path, self.fingerprint, self._resumable())
        if state is not None:
            self.state, self.resumed_from = state, state.epoch
            logger.info("%s: resuming from %s after epoch %d", self.model_name, path, state.epoch)
        elif path.exists():
            logger.warning(
                "%s: %s was made with another config or data; starting afresh", self.model_name, path
            )

    def save_checkpoint(self) -> None:
        """Save the run after the current epoch, and its epochs.tsv."""
        ckpt.save_checkpoint(self.outputs.checkpoint, self.fingerprint, self._resumable(), self.state)
        self._write_epochs()

    def _resumable(self) -> ckpt.Resumable:
        return ckpt.Resumable(
            self.model, self.optimizer, self.scheduler, (self.data_order, self.augmentation)
        )

    # -- one epoch ----------------------------------------------------------------------------------

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training scans in a fresh random order; returns the mean training loss."""
        self.model.train()
        train_rows = self.rows["train"]
        order = train_rows[torch.randperm(len(train_rows), generator=self.data_order).numpy()]
        batches = [
            sorted(order[i * self.batch_size : (i + 1) * self.batch_size].tolist())
            for i in range(self.steps_per_epoch)
        ]
        labels = dict(
            zip(self.parts.index["row"].astype(int), self.parts.index["label"].astype(float), strict=True)
        )
        loader = torch.utils.data.DataLoader(
            BatchReader(self.volumes_npy, labels),
            batch_size=None,
            sampler=batches,
            **loader_options(self.on_gpu, self.config.num_workers),
        )
        progress = tqdm(
            loader,
            total=len(batches),
            desc=f"{self.model_name} epoch {epoch}/{self.config.epochs}",
            leave=False,
            disable=not sys.stderr.isatty(),
        )
        running_loss = 0.0
        for batch_volumes, batch_labels in progress:
            loss = train_step(
                self.model,
                self.optimizer,
                self.criterion,
                batch_volumes.to(self.device, non_blocking=True),
                batch_labels.to(self.device, non_blocking=True),
                self.augmentation if self.config.augment else None,
                self.input_memory_format,
                self.on_gpu,
            )
            self.scheduler.step()
            running_loss += float(loss)
            progress.set_postfix(loss=f"{float(loss):.3f}")
        progress.close()
        return running_loss / len(batches)

    def validate(self) -> tuple[float, np.ndarray]:
        """Validation loss (the training criterion on the predicted probabilities) and probabilities."""
        rows = self.rows["val"]
        self.model.eval()
        p_ht = probabilities(
            predict_logits(self.model, self.volumes, rows, batch_size=self.batch_size, device=self.device)
        )
        eps = 1e-7
        logits = torch.logit(torch.from_numpy(p_ht).clamp(eps, 1 - eps)).to(self.device)
        loss = float(
            self.criterion(logits.float(), torch.from_numpy(self.parts.labels(rows)).to(self.device))
        )
        return loss, p_ht

    def select(self, epoch: int, val_loss: float, val_auc: float) -> None:
        """Model selection and early stopping on the monitored validation metric.

        Before ``min_epochs`` the newest epoch is kept as a stand-in, so the first selectable epoch
        always replaces it and an interrupted short run still has weights. After it, an epoch is
        selected only when it improves on the selected one by more than ``min_delta``: at the
        one-cycle schedule's tail the validation loss keeps creeping down by less than its own
        noise, and counting those steps would select the last epoch whether or not the model
        had reached its plateau (docs/models.md, "Selection with a minimum improvement").
        """
        state, config = self.state, self.config
        if config.monitor == "val_loss":
            metric = val_loss
        else:
            metric = -(val_auc if not np.isnan(val_auc) else -np.inf)
        first_selectable = min(config.min_epochs, config.epochs)
        selectable = epoch >= first_selectable
        if epoch <= first_selectable or (
            selectable and metric < state.best_metric - max(config.min_delta, 1e-6)
        ):
            state.best_metric, state.best_epoch, state.epochs_without_improvement = metric, epoch, 0
            state.best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
            }
        elif selectable:
            state.epochs_without_improvement += 1
        state.epoch = epoch
        state.stopped = state.epochs_without_improvement >= config.patience

    # -- the procedure ------------------------------------------------------------------------------

    def run(self) -> dict:
        """Train (resuming when possible), then write every output; returns a summary."""
        self.outputs.make_folders()
        self.load_checkpoint()
        started = time.perf_counter()
        for epoch in range(self.state.epoch + 1, self.config.epochs + 1):
            if self.state.stopped:
                break
            epoch_start = time.perf_counter()
            train_loss = self.train_epoch(epoch)
            val_loss, val_probabilities = self.validate()
            val_auc = auc(self.parts.labels(self.rows["val"]), val_probabilities)
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_auc": val_auc,
                "lr": self.optimizer.param_groups[0]["lr"],
                "seconds": round(time.perf_counter() - epoch_start, 3),
            }
            self.state.history.append(row)
            self.select(epoch, val_loss, val_auc)
            self._log_epoch(row)
            self.save_checkpoint()
            if self.epoch_callback is not None:
                self.epoch_callback(epoch, row)
            if self.state.stopped:
                logger.info(
                    "%s: early stop after epoch %d (best epoch %d)",
                    self.model_name,
                    epoch,
                    self.state.best_epoch,
                )
        threshold = self.write_outputs()
        logger.info(
            "%s: best epoch %d, val AUC %.3f, threshold %.3f; %.0fs this run",
            self.model_name, self.state.best_epoch, threshold["val_auc"], threshold["threshold"],
            time.perf_counter() - started,
        )  # fmt: skip
        return {
            "best_epoch": self.state.best_epoch,
            "epochs_run": self.state.epoch,
            "val_auc": threshold["val_auc"],
            "threshold": threshold["threshold"],
            "resumed_from": self.resumed_from,
            "out_dir": str(self.outputs.weights.parent),
            "predictions": str(self.outputs.predictions),
        }

    def write_outputs(self) -> dict:
        """With the selected epoch's weights: the threshold on validation, the val and test
        predictions, weights.pt, config.yaml, epochs.tsv and the training curve. Returns the threshold."""
        self.model.load_state_dict(self.state.best_state)
        _, val_probabilities = self.validate()
        y_val = self.parts.labels(self.rows["val"])
        threshold = youden_threshold(y_val, val_probabilities)
        threshold.update(
            method="youden_j_on_validation",
            val_auc=auc(y_val, val_probabilities),
            best_epoch=self.state.best_epoch,
            n_val=len(self.rows["val"]),
        )
        test_rows = self.rows["test"]
        test_probabilities = probabilities(
            predict_logits(
                self.model, self.volumes, test_rows, batch_size=self.batch_size, device=self.device
            )
        )
        predictions = self._predictions_table(val_probabilities, test_probabilities)
        predictions["threshold"] = threshold["threshold"]
        predictions.to_csv(self.outputs.predictions, sep="\t", index=False, float_format="%.6g")
        torch.save(self.state.best_state, self.outputs.weights)
        self.outputs.threshold.write_text(json.dumps(threshold, indent=2) + "\n")
        model_config = {
            **self.model_config,
            "threshold": threshold["threshold"],
            "best_epoch": self.state.best_epoch,
            "versions": {"htct": htct.__version__, "torch": torch.__version__},
            "device": str(self.device),
            "provenance": training_provenance(self.synthetic, self.parts.index),
        }
        self.outputs.config.write_text(yaml.safe_dump(_plain(model_config), sort_keys=False))
        self._write_epochs()
        from htct.figures.training import training_curve_figure  # matplotlib only where a curve is drawn

        training_curve_figure(
            self.outputs.epochs,
            self.outputs.curve,
            self.model_name,
            best_epoch=self.state.best_epoch,
            fold=self.fold,
            synthetic=bool(self.synthetic),
        )
        return threshold

    # -- small helpers ------------------------------------------------------------------------------

    def _predictions_table(self, p_val: np.ndarray, p_test: np.ndarray) -> pd.DataFrame:
        index = self.parts.index.set_index("row")
        tables = []
        for split, p in (("val", p_val), ("test", p_test)):
            table = index.loc[self.rows[split], ["patient_id", "scan_id", "label"]].reset_index(drop=True)
            table.insert(2, "split", split)
            table = table.rename(columns={"label": "y_true"})
            table["p_ht"] = p
            tables.append(table)
        return pd.concat(tables, ignore_index=True)

    def _write_epochs(self) -> None:
        columns = ["epoch", "train_loss", "val_loss", "val_auc", "lr", "seconds"]
        table = pd.DataFrame(self.state.history, columns=columns)
        table.to_csv(self.outputs.epochs, sep="\t", index=False, float_format="%.6g")

    def _log_epoch(self, row: dict) -> None:
        logger.info(
            "%s epoch %d/%d train_loss %.4f val_loss %.4f val_auc %.3f lr %.2e %.1fs%s",
            self.model_name, row["epoch"], self.config.epochs, row["train_loss"], row["val_loss"],
            row["val_auc"], row["lr"], row["seconds"], " (best)" if self.state.best_epoch == row["epoch"] else "",
        )  # fmt: skip


def train_model(
    model_name: str,
    volumes_npy: str | Path,
    index_tsv: str | Path,
    split_tsv: str | Path,
    out_dir: str | Path | None = None,
    fold: int = -1,
    predictions_tsv: str | Path | None = None,
    preprocess: Mapping | None = None,
    epoch_callback: EpochCallback | None = None,
    outputs: TrainOutputs | None = None,
    config: TrainConfig | Mapping | None = None,
    synthetic: bool | None = None,
    **overrides: object,
) -> dict:
    """Train `model_name` on part == train, early-stop and pick the threshold on part == val.

    The test scans are only predicted, never used for any choice. Writes the files of ``outputs``
    (default: weights.pt, config.yaml, epochs.tsv, threshold.json, training_curve.png and
    checkpoint.pt in ``out_dir``, predictions in ``predictions_tsv`` or out_dir/predictions.tsv).

    Args:
        model_name: a registered model (htct.models.list_models()).
        volumes_npy: results/arrays/volumes.npy, float16 [N, C, D, S, S].
        index_tsv: results/arrays/index.tsv.
        split_tsv: results/split/split.tsv.
        out_dir: the model folder (when ``outputs`` is not given).
        fold: -1 for the single split; k >= 0 trains fold k of a k-fold split.
        predictions_tsv: where to write the predictions (with ``out_dir``).
        preprocess: the preprocessing parameters of the arrays (config.yaml `preprocess:`).
        epoch_callback: called as `fn(epoch, row)` after each epoch's checkpoint is saved.
        outputs: the exact files to write (a rule's outputs: TrainOutputs.from_rule).
        config: config.yaml `train:` (a TrainConfig or a mapping, whose ``per_model`` options for
            ``model_name`` apply; schema defaults for the rest).
        synthetic: whether the cohort is the synthetic one (recorded in config.yaml ``provenance:``).
        **overrides: single `train:` keys on top of ``config`` (e.g. ``epochs=2``).

    Returns:
        Summary: best_epoch, epochs_run, val_auc, threshold, resumed_from, out_dir, predictions.
    """
    if outputs is None:
        if out_dir is None:
            raise ValueError("train_model needs out_dir or outputs")
        outputs = TrainOutputs.in_folder(out_dir, predictions_tsv)
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_mapping(config, model=model_name, **overrides)
    elif overrides:
        config = TrainConfig.from_mapping(config.as_dict(), **overrides)
    trainer = Trainer(
        model_name,
        volumes_npy,
        index_tsv,
        split_tsv,
        outputs,
        config,
        fold,
        preprocess,
        synthetic,
        epoch_callback,
    )
    return trainer.run()

"""Training of one model on one split (or fold): early stopping and threshold on validation, resumable.

Everything that makes a run differ from another run with the same config is either seeded or saved
in checkpoint.pt after every epoch (model, optimizer, scheduler, the global, data-order and
augmentation random states, early-stopping counters), so a rerun after a crash continues from the
last completed epoch and ends with the same weights as an uninterrupted run (bit-identical on CPU).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn.metrics import roc_auc_score, roc_curve
from torch import nn
from tqdm.auto import tqdm

import htct
from htct.train.data import BatchReader, ScanParts, assign_parts, augment_batch, loader_options
from htct.train.predict import build_model, predict_volumes

logger = logging.getLogger("htct.train")

DEFAULT_TRAIN_CONFIG: dict[str, object] = {
    "device": "auto",  # auto | cpu | cuda
    "epochs": 20,
    "batch_size": 8,
    "lr": 2e-3,  # peak learning rate of the one-cycle schedule
    "weight_decay": 1e-4,
    "patience": 6,  # epochs without improvement of the monitored metric before stopping
    "seed": 2026,
    "num_workers": 2,  # DataLoader workers on GPU machines (CPU runs read in the main process)
    "ctnet_conv": "3d",
    "threads": None,  # CPU threads for torch; None: leave torch's default
    "augment": True,
    "monitor": "val_loss",  # val_loss | val_auc
    # No model selection or early stop before this epoch: on 23 validation scans the chance-level
    # first epochs often have the lowest loss, and the one-cycle schedule peaks at 20 % of the run.
    "min_epochs": 10,
    "model_options": {},  # per model name: extra constructor options, e.g. {ctnet: {width: 16}}
    "synthetic": False,  # data are the synthetic cohort: the training curve says so (set by the workflow)
}

CHECKPOINT_VERSION = 1


def resolve_train_config(train_cfg: dict) -> dict:
    """Defaults merged with the given config; keys only the workflow uses (e.g. `models`) are dropped."""
    cfg = copy.deepcopy(DEFAULT_TRAIN_CONFIG)
    cfg.update({k: copy.deepcopy(v) for k, v in train_cfg.items() if k != "models"})
    if cfg["monitor"] not in ("val_loss", "val_auc"):
        raise ValueError(f"train.monitor must be val_loss or val_auc, not {cfg['monitor']!r}")
    return cfg


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(device)


def youden_threshold(y_true: np.ndarray, p_ht: np.ndarray) -> dict[str, float]:
    """Threshold maximising Youden's J (sensitivity + specificity - 1) on validation scans.

    Args:
        y_true: 0/1 labels.
        p_ht: predicted probabilities.

    Returns:
        threshold, youden_j, sensitivity, specificity (threshold 0.5 and NaNs when only one class).
    """
    if len(np.unique(y_true)) < 2:
        return {"threshold": 0.5, "youden_j": math.nan, "sensitivity": math.nan, "specificity": math.nan}
    fpr, tpr, thresholds = roc_curve(y_true, p_ht)
    finite = np.isfinite(thresholds)  # the first threshold is +inf (nobody called positive)
    j = np.where(finite, tpr - fpr, -np.inf)
    best = int(np.argmax(j))
    return {
        "threshold": float(thresholds[best]),
        "youden_j": float(j[best]),
        "sensitivity": float(tpr[best]),
        "specificity": float(1 - fpr[best]),
    }


def _auc(y_true: np.ndarray, p_ht: np.ndarray) -> float:
    return float(roc_auc_score(y_true, p_ht)) if len(np.unique(y_true)) == 2 else math.nan


def _rng_states(data_order: torch.Generator, augmentation: torch.Generator) -> dict:
    states = {
        "torch": torch.get_rng_state(),
        "data_order": data_order.get_state(),
        "augmentation": augmentation.get_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict, data_order: torch.Generator, augmentation: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    data_order.set_state(states["data_order"])
    augmentation.set_state(states["augmentation"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _atomic_torch_save(obj: object, path: Path) -> None:
    """Write then rename, so a crash while saving never leaves a truncated checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def channels_last(model: nn.Module) -> tuple[nn.Module, torch.memory_format | None]:
    """The model in channels-last memory format, and the memory format its input batches take.

    channels_last(_3d) speeds up the convolutions on both oneDNN (CPU) and cuDNN (GPU). The 2D
    CTNet reshapes its 5-D input itself; only 3D models take channels_last_3d input (else None).
    """
    is_3d = any(isinstance(m, nn.Conv3d) for m in model.modules())
    model = model.to(memory_format=torch.channels_last_3d if is_3d else torch.channels_last)
    return model, torch.channels_last_3d if is_3d else None


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    volumes: torch.Tensor,
    labels: torch.Tensor,
    augmentation: torch.Generator | None,
    input_memory_format: torch.memory_format | None,
    on_gpu: bool,
) -> torch.Tensor:
    """One optimiser step on a batch already on the model's device; returns the (detached) loss.

    Augments the batch (when `augmentation` is given), lays it out in `input_memory_format`, and on
    the GPU runs the forward pass under bf16 autocast (the loss in float32).
    """
    if augmentation is not None:
        volumes = augment_batch(volumes, augmentation)
    if input_memory_format is not None:
        volumes = volumes.contiguous(memory_format=input_memory_format)
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_gpu):
        logits = model(volumes).squeeze(1)
    loss = criterion(logits.float(), labels)
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_model(
    model_name: str,
    volumes_npy: str | Path,
    index_tsv: str | Path,
    split_tsv: str | Path,
    out_dir: str | Path,
    fold: int = -1,
    predictions_tsv: str | Path | None = None,
    preprocess: dict | None = None,
    epoch_callback: Callable[[int, dict], None] | None = None,
    **train_cfg: object,
) -> dict:
    """Train `model_name` on part == train, early-stop and pick the threshold on part == val.

    The test scans are only predicted, never used for any choice. Writes to `out_dir`: weights.pt
    (state dict of the best epoch), config.yaml (model, training and preprocessing config),
    epochs.tsv, threshold.json, checkpoint.pt (every epoch; a rerun resumes from it) and
    training_curve.pdf/.png; and the validation and test predictions to `predictions_tsv`
    (default out_dir/predictions.tsv).

    Args:
        model_name: a registered model (htct.models.list_models()).
        volumes_npy: results/arrays/volumes.npy, float16 [N, C, D, S, S].
        index_tsv: results/arrays/index.tsv.
        split_tsv: results/split/split.tsv.
        out_dir: the model folder, e.g. results/models/ctnet.
        fold: -1 for the single split; k >= 0 trains fold k of a k-fold split.
        predictions_tsv: where to write the predictions.
        preprocess: the preprocessing parameters of the arrays (config.yaml `preprocess:`), saved
            with the model so that `htct predict` prepares new scans the same way.
        epoch_callback: called as `fn(epoch, row)` after each epoch's checkpoint is saved (tests
            use it to simulate a crash).
        **train_cfg: config.yaml `train:` keys (see DEFAULT_TRAIN_CONFIG).

    Returns:
        Summary: best_epoch, epochs_run, val_auc, threshold, resumed_from, out_dir, predictions.
    """
    cfg = resolve_train_config(train_cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions_tsv = Path(predictions_tsv) if predictions_tsv else out_dir / "predictions.tsv"
    device = resolve_device(str(cfg["device"]))
    on_gpu = device.type == "cuda"

    if on_gpu:
        torch.backends.cudnn.benchmark = True
    else:
        # Bit-identical reruns on CPU; GPU runs favour speed (cuDNN autotuning is not deterministic).
        torch.use_deterministic_algorithms(True)
        if cfg["threads"]:
            torch.set_num_threads(int(cfg["threads"]))

    volumes = np.load(volumes_npy, mmap_mode="r")
    if volumes.ndim != 5:
        raise ValueError(f"{volumes_npy}: expected [N, C, slices, S, S], got shape {volumes.shape}")
    _, in_channels, n_slices, height, width = volumes.shape
    parts = assign_parts(index_tsv, split_tsv, fold=fold)
    train_rows, val_rows, test_rows = (parts.rows(p) for p in ("train", "val", "test"))
    labels_by_row = dict(zip(parts.index["row"].astype(int), parts.index["label"].astype(float), strict=True))
    y_train = parts.labels(train_rows)
    n_pos = float(y_train.sum())
    pos_weight = torch.tensor([(len(y_train) - n_pos) / n_pos], device=device)

    model_kwargs = dict((cfg["model_options"] or {}).get(model_name, {}))
    if model_name == "ctnet":
        model_kwargs.setdefault("conv", cfg["ctnet_conv"])
    model_config = {
        "model": {
            "name": model_name,
            "in_channels": int(in_channels),
            "n_slices": int(n_slices),
            "kwargs": model_kwargs,
        },
        "input_shape": [int(in_channels), int(n_slices), int(height), int(width)],
        "fold": fold,
        "train": cfg,
        "preprocess": dict(preprocess or {}),
        "data": {
            "volumes": str(volumes_npy),
            "n_train": len(train_rows),
            "n_val": len(val_rows),
            "n_test": len(test_rows),
            "n_train_positive": int(n_pos),
        },
    }
    # A checkpoint is only resumed when it was made with the same model, config and data sizes.
    fingerprint = json.dumps(
        {k: model_config[k] for k in ("model", "input_shape", "fold", "train", "data")},
        sort_keys=True,
        default=str,
    )

    # All randomness comes from torch: the global generator (weight init, dropout) and two generators
    # of our own (data order, augmentation); numpy's and Python's global generators are not used.
    torch.manual_seed(int(cfg["seed"]))
    data_order = torch.Generator().manual_seed(int(cfg["seed"]) + 1)
    augmentation = torch.Generator().manual_seed(int(cfg["seed"]) + 2)

    model, input_memory_format = channels_last(build_model(model_config).to(device))
    batch_size = min(int(cfg["batch_size"]), len(train_rows))
    # drop_last: a batch of one scan would break BatchNorm; the dropped scans differ every epoch.
    steps_per_epoch = max(1, len(train_rows) // batch_size)
    epochs = int(cfg["epochs"])
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"])
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=float(cfg["lr"]), total_steps=epochs * steps_per_epoch, pct_start=0.2
    )
    criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    state = {
        "epoch": 0,
        "history": [],
        "best_metric": math.inf,
        "best_epoch": 0,
        "best_state": None,
        "epochs_without_improvement": 0,
        "stopped": False,
    }
    checkpoint_path = out_dir / "checkpoint.pt"
    resumed_from = 0
    if checkpoint_path.exists():
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if checkpoint.get("version") == CHECKPOINT_VERSION and checkpoint.get("fingerprint") == fingerprint:
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            _set_rng_states(checkpoint["rng"], data_order, augmentation)
            state = checkpoint["state"]
            resumed_from = int(state["epoch"])
            logger.info("%s: resuming from %s after epoch %d", model_name, checkpoint_path, resumed_from)
        else:
            logger.warning(
                "%s: %s was made with another config or data; starting afresh", model_name, checkpoint_path
            )

    reader = BatchReader(volumes_npy, labels_by_row)
    options = loader_options(on_gpu, int(cfg["num_workers"]))
    show_progress = sys.stderr.isatty()

    def evaluate(rows: np.ndarray) -> tuple[float, np.ndarray]:
        model.eval()
        probabilities = predict_volumes(model, volumes, rows, batch_size=batch_size, device=device)
        y = parts.labels(rows)
        eps = 1e-7
        logits = torch.logit(torch.from_numpy(probabilities).clamp(eps, 1 - eps)).to(device)
        loss = float(criterion(logits.float(), torch.from_numpy(y).to(device)))
        return loss, probabilities

    started = time.perf_counter()
    for epoch in range(state["epoch"] + 1, epochs + 1):
        if state["stopped"]:
            break
        epoch_start = time.perf_counter()
        model.train()
        order = train_rows[torch.randperm(len(train_rows), generator=data_order).numpy()]
        batches = [
            sorted(order[i * batch_size : (i + 1) * batch_size].tolist()) for i in range(steps_per_epoch)
        ]
        loader = torch.utils.data.DataLoader(reader, batch_size=None, sampler=batches, **options)
        running_loss = 0.0
        progress = tqdm(
            loader,
            total=len(batches),
            desc=f"{model_name} epoch {epoch}/{epochs}",
            leave=False,
            disable=not show_progress,
        )
        for batch_volumes, batch_labels in progress:
            batch_volumes = batch_volumes.to(device, non_blocking=True)
            batch_labels = batch_labels.to(device, non_blocking=True)
            loss = train_step(
                model,
                optimizer,
                criterion,
                batch_volumes,
                batch_labels,
                augmentation if cfg["augment"] else None,
                input_memory_format,
                on_gpu,
            )
            scheduler.step()
            running_loss += float(loss)
            progress.set_postfix(loss=f"{float(loss):.3f}")
        progress.close()
        train_loss = running_loss / len(batches)
        val_loss, val_probabilities = evaluate(val_rows)
        val_auc = _auc(parts.labels(val_rows), val_probabilities)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_auc": val_auc,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - epoch_start, 3),
        }
        state["history"].append(row)
        metric = (
            val_loss if cfg["monitor"] == "val_loss" else -(val_auc if not math.isnan(val_auc) else -math.inf)
        )
        # Before min_epochs the newest epoch is kept as a stand-in, so the first selectable epoch always
        # replaces it and an interrupted short run still has weights.
        first_selectable = min(int(cfg["min_epochs"]), epochs)
        selectable = epoch >= first_selectable
        if epoch <= first_selectable or (selectable and metric < state["best_metric"] - 1e-6):
            state.update(best_metric=metric, best_epoch=epoch, epochs_without_improvement=0)
            state["best_state"] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        elif selectable:
            state["epochs_without_improvement"] += 1
        state["epoch"] = epoch
        state["stopped"] = state["epochs_without_improvement"] >= int(cfg["patience"])
        logger.info(
            "%s epoch %d/%d train_loss %.4f val_loss %.4f val_auc %.3f lr %.2e %.1fs%s",
            model_name,
            epoch,
            epochs,
            train_loss,
            val_loss,
            val_auc,
            row["lr"],
            row["seconds"],
            " (best)" if state["best_epoch"] == epoch else "",
        )
        _atomic_torch_save(
            {
                "version": CHECKPOINT_VERSION,
                "fingerprint": fingerprint,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": _rng_states(data_order, augmentation),
                "state": state,
            },
            checkpoint_path,
        )
        _write_epochs(state["history"], out_dir / "epochs.tsv")
        if epoch_callback is not None:
            epoch_callback(epoch, row)
        if state["stopped"]:
            logger.info(
                "%s: early stop after epoch %d (best epoch %d)", model_name, epoch, state["best_epoch"]
            )

    model.load_state_dict(state["best_state"])
    val_loss, val_probabilities = evaluate(val_rows)
    y_val = parts.labels(val_rows)
    threshold = youden_threshold(y_val, val_probabilities)
    threshold.update(
        method="youden_j_on_validation",
        val_auc=_auc(y_val, val_probabilities),
        best_epoch=state["best_epoch"],
        n_val=len(val_rows),
    )
    test_probabilities = predict_volumes(model, volumes, test_rows, batch_size=batch_size, device=device)
    predictions = _predictions_table(parts, val_rows, val_probabilities, test_rows, test_probabilities)
    predictions["threshold"] = threshold["threshold"]
    predictions_tsv.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(predictions_tsv, sep="\t", index=False, float_format="%.6g")

    torch.save(state["best_state"], out_dir / "weights.pt")
    (out_dir / "threshold.json").write_text(json.dumps(threshold, indent=2) + "\n")
    model_config.update(
        threshold=threshold["threshold"],
        best_epoch=state["best_epoch"],
        versions={"htct": htct.__version__, "torch": torch.__version__},
        device=str(device),
    )
    (out_dir / "config.yaml").write_text(yaml.safe_dump(_plain(model_config), sort_keys=False))
    _write_epochs(state["history"], out_dir / "epochs.tsv")
    from htct.figures.training import training_curve_figure  # matplotlib only where a curve is drawn

    training_curve_figure(
        out_dir / "epochs.tsv",
        out_dir / "training_curve",
        model_name,
        best_epoch=state["best_epoch"],
        fold=fold,
        synthetic=bool(cfg["synthetic"]),
    )
    logger.info(
        "%s: best epoch %d, val AUC %.3f, threshold %.3f; %.0fs this run",
        model_name,
        state["best_epoch"],
        threshold["val_auc"],
        threshold["threshold"],
        time.perf_counter() - started,
    )
    return {
        "best_epoch": state["best_epoch"],
        "epochs_run": state["epoch"],
        "val_auc": threshold["val_auc"],
        "threshold": threshold["threshold"],
        "resumed_from": resumed_from,
        "out_dir": str(out_dir),
        "predictions": str(predictions_tsv),
    }


def _plain(obj: object) -> object:
    """Config values as plain YAML types (tuples and numpy scalars become lists and numbers)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, str):
        return str(obj)  # str subclasses such as torch's TorchVersion
    return obj


def _predictions_table(
    parts: ScanParts, val_rows: np.ndarray, p_val: np.ndarray, test_rows: np.ndarray, p_test: np.ndarray
) -> pd.DataFrame:
    index = parts.index.set_index("row")
    tables = []
    for split, rows, p in (("val", val_rows, p_val), ("test", test_rows, p_test)):
        table = index.loc[rows, ["patient_id", "scan_id", "label"]].reset_index(drop=True)
        table.insert(2, "split", split)
        table = table.rename(columns={"label": "y_true"})
        table["p_ht"] = p
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def _write_epochs(history: list[dict], path: Path) -> None:
    columns = ["epoch", "train_loss", "val_loss", "val_auc", "lr", "seconds"]
    pd.DataFrame(history, columns=columns).to_csv(path, sep="\t", index=False, float_format="%.6g")


def merge_fold_predictions(
    fold_predictions: list[str | Path], out_tsv: str | Path, threshold_json: str | Path | None = None
) -> pd.DataFrame:
    """Merge the predictions of a k-fold training into one table.

    Validation rows are the out-of-fold predictions (every non-test scan once, by the model that did
    not train on it); test rows average p_ht over the fold models (an ensemble). The threshold is
    re-chosen (maximal Youden's J) on the pooled out-of-fold predictions, never on the test scans.

    Args:
        fold_predictions: the folds' predictions.tsv files.
        out_tsv: merged table (patient_id, scan_id, split, y_true, p_ht, threshold).
        threshold_json: where to write the pooled threshold (optional).

    Returns:
        The merged table.
    """
    folds = [
        pd.read_csv(path, sep="\t", dtype={"patient_id": str, "scan_id": str}) for path in fold_predictions
    ]
    val = pd.concat([f[f["split"] == "val"] for f in folds], ignore_index=True)
    if val["scan_id"].duplicated().any():
        raise ValueError("a scan is in the validation part of two folds: the folds overlap")
    test = (
        pd.concat([f[f["split"] == "test"] for f in folds])
        .groupby(["patient_id", "scan_id", "split", "y_true"], as_index=False, sort=True)["p_ht"]
        .mean()
    )
    threshold = youden_threshold(val["y_true"].to_numpy(), val["p_ht"].to_numpy())
    threshold.update(
        method="youden_j_on_pooled_out_of_fold_validation",
        val_auc=_auc(val["y_true"], val["p_ht"]),
        n_folds=len(folds),
    )
    merged = pd.concat([val.drop(columns="threshold"), test], ignore_index=True)
    merged["threshold"] = threshold["threshold"]
    merged = merged[["patient_id", "scan_id", "split", "y_true", "p_ht", "threshold"]]
    merged.to_csv(out_tsv, sep="\t", index=False, float_format="%.6g")
    if threshold_json:
        Path(threshold_json).write_text(json.dumps(threshold, indent=2) + "\n")
    return merged

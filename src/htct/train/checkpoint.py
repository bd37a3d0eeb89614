"""Checkpoints that make a training run resumable to the bit: model, optimiser, schedule, random states.

Everything that makes a run differ from another run with the same config is either seeded or saved
here after every epoch (model, optimizer, scheduler, the global, data-order and augmentation random
states, the early-stopping counters), so a rerun after a crash continues from the last completed
epoch and ends with the same weights as an uninterrupted run (bit-identical on CPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

CHECKPOINT_VERSION = 1


@dataclass
class TrainingState:
    """The progress of a run: the epochs done, their history, and model selection / early stopping."""

    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best_metric: float = float("inf")
    best_epoch: int = 0
    best_state: dict | None = None
    epochs_without_improvement: int = 0
    stopped: bool = False


def atomic_torch_save(obj: object, path: Path) -> None:
    """Write then rename, so a crash while saving never leaves a truncated file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_states(data_order: torch.Generator, augmentation: torch.Generator) -> dict:
    """The global torch generator, the run's own two generators and (on CUDA) the device generators."""
    states = {
        "torch": torch.get_rng_state(),
        "data_order": data_order.get_state(),
        "augmentation": augmentation.get_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict, data_order: torch.Generator, augmentation: torch.Generator) -> None:
    """Inverse of :func:`rng_states`."""
    torch.set_rng_state(states["torch"])
    data_order.set_state(states["data_order"])
    augmentation.set_state(states["augmentation"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


@dataclass
class Resumable:
    """What a checkpoint restores besides the progress: the model, its optimiser and schedule, and
    the run's own random generators (data order, augmentation)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generators: tuple[torch.Generator, torch.Generator]


def save_checkpoint(path: Path, fingerprint: str, parts: Resumable, state: TrainingState) -> None:
    """Save everything needed to continue after the current epoch."""
    atomic_torch_save(
        {
            "version": CHECKPOINT_VERSION,
            "fingerprint": fingerprint,
            "model": parts.model.state_dict(),
            "optimizer": parts.optimizer.state_dict(),
            "scheduler": parts.scheduler.state_dict(),
            "rng": rng_states(*parts.generators),
            "state": dict(vars(state)),  # shallow: the tensors are saved, not deep-copied first
        },
        path,
    )


def load_checkpoint(path: Path, fingerprint: str, parts: Resumable) -> TrainingState | None:
    """Restore a checkpoint made with the same fingerprint (model, config, data sizes); None otherwise."""
    if not path.exists():
        return None
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if checkpoint.get("version") != CHECKPOINT_VERSION or checkpoint.get("fingerprint") != fingerprint:
        return None
    parts.model.load_state_dict(checkpoint["model"])
    parts.optimizer.load_state_dict(checkpoint["optimizer"])
    parts.scheduler.load_state_dict(checkpoint["scheduler"])
    set_rng_states(checkpoint["rng"], *parts.generators)
    return TrainingState(**checkpoint["state"])

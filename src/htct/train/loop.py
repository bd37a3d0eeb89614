"""One training step on a batch, shared by the trainer and benchmarks/bench_train.py.

The procedure around it (epochs, validation, model selection, checkpoints, outputs) is
:class:`htct.train.trainer.Trainer`.
"""

from __future__ import annotations

import torch
from torch import nn

from htct.train.data import augment_batch


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

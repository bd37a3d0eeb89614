"""Scan arrays for training: which rows belong to which part, batches read from the memory map, augmentation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from htct.errors import HTCTInputError

SPLIT_PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class ScanParts:
    """Rows of volumes.npy in each part, with their index rows (scan_id, patient_id, label)."""

    index: pd.DataFrame  # index.tsv joined with the patient's part: row, scan_id, patient_id, label, part

    def rows(self, part: str) -> np.ndarray:
        """Rows of volumes.npy in `part` (train, val or test), ascending."""
        return np.sort(self.index.loc[self.index["part"] == part, "row"].to_numpy(dtype=np.int64))

    def labels(self, rows: np.ndarray) -> np.ndarray:
        """Labels (0/1) of the given rows."""
        return self.index.set_index("row").loc[rows, "label"].to_numpy(dtype=np.float32)


def assign_parts(index_tsv: str | Path, split_tsv: str | Path, fold: int = -1) -> ScanParts:
    """Give every scan its patient's part; with `fold` >= 0 the patients of that fold are validation.

    Args:
        index_tsv: results/arrays/index.tsv (row, scan_id, patient_id, label, ...).
        split_tsv: results/split/split.tsv (patient_id, label, part, fold); a split with a scan_id
            column (the image-level sensitivity analysis) gives each scan its own part.
        fold: -1 for the single split (parts as written); k >= 0 for fold k of a k-fold split,
            where the non-test patients with fold == k are validation and the others training.

    Returns:
        The parts.

    Raises:
        HTCTInputError: scans of patients missing from the split, a part without scans, or a
            training part with a single class.
    """
    index = pd.read_csv(index_tsv, sep="\t", dtype={"scan_id": str, "patient_id": str})
    split = pd.read_csv(split_tsv, sep="\t", dtype={"patient_id": str, "scan_id": str})
    if "scan_id" in split.columns:  # an image-level split (htct.split.make_image_split): part per scan
        merged = index.merge(split[["scan_id", "part", "fold"]], on="scan_id", how="left", validate="1:1")
    else:
        merged = index.merge(
            split[["patient_id", "part", "fold"]], on="patient_id", how="left", validate="m:1"
        )
    missing = merged.loc[merged["part"].isna(), "patient_id"].unique()
    if len(missing):
        raise HTCTInputError(
            f"{split_tsv}: {len(missing)} patients with scans in {index_tsv} are not in the split "
            f"(e.g. {missing[0]}); rerun the split rule"
        )
    if fold >= 0:
        if fold not in set(merged["fold"]):
            raise HTCTInputError(f"{split_tsv}: no patients in fold {fold}; is split.k_folds >= 2?")
        non_test = merged["part"] != "test"
        merged.loc[non_test, "part"] = np.where(merged.loc[non_test, "fold"] == fold, "val", "train")
    for part in ("train", "val"):
        labels = merged.loc[merged["part"] == part, "label"]
        if labels.empty:
            raise HTCTInputError(f"{split_tsv}: no scans in part {part!r} (fold {fold})")
    if merged.loc[merged["part"] == "train", "label"].nunique() < 2:
        raise HTCTInputError(f"{split_tsv}: the training part has a single class; cannot train")
    return ScanParts(index=merged)


class BatchReader(torch.utils.data.Dataset):
    """Reads a whole batch of rows from the memory-mapped volumes.npy (one item = one batch).

    Reading a batch at once (sorted rows) is one strided read per scan from the memory map, and
    lets DataLoader workers prefetch whole batches on GPU machines.
    """

    def __init__(self, volumes_npy: str | Path, labels_by_row: dict[int, float]) -> None:
        self.volumes_npy = str(volumes_npy)
        self.labels_by_row = labels_by_row
        self._volumes: np.ndarray | None = None  # opened lazily: memory maps do not pickle to workers

    def __getitem__(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if self._volumes is None:
            self._volumes = np.load(self.volumes_npy, mmap_mode="r")
        volumes = torch.from_numpy(np.asarray(self._volumes[np.asarray(rows)], dtype=np.float32))
        labels = torch.tensor([self.labels_by_row[int(r)] for r in rows], dtype=torch.float32)
        return volumes, labels


def loader_options(on_gpu: bool, num_workers: int) -> dict:
    """DataLoader options for :class:`BatchReader`: GPU runs prefetch batches in worker processes.

    On a GPU, `num_workers` processes read whole batches ahead (two each) into pinned memory, so
    the host-to-device copy is asynchronous and the GPU does not wait for the disk. CPU runs read in
    the main process: a 96x96 batch comes from the page cache in about a millisecond
    (benchmarks/bench_train.py), and worker processes would compete for the cores.
    """
    if not on_gpu or num_workers <= 0:
        return {"num_workers": 0, "pin_memory": on_gpu}
    return {"num_workers": num_workers, "pin_memory": True, "persistent_workers": False, "prefetch_factor": 2}


def augment_batch(
    volumes: torch.Tensor,
    generator: torch.Generator,
    max_rotation_deg: float = 10.0,
    max_shift: float = 0.05,
    intensity_jitter: float = 0.01,
) -> torch.Tensor:
    """Light augmentation of a batch [B, C, D, H, W], one draw per scan, vectorised over the batch.

    Left-right flip (p = 0.5) of axis -2, which is i (patient left-right, NIfTI RAS) in the preprocess
    stage's [C, slice, i, j] layout; an in-plane rotation and shift shared by
    all slices of a scan (one affine grid per scan, `grid_sample` over the C x D planes) and an
    intensity scale/offset. Random numbers come from `generator` (on the CPU) so that a resumed run
    draws the same augmentations.

    Args:
        volumes: the batch, windowed to [0, 1].
        generator: CPU random generator for the draws.
        max_rotation_deg: rotations are uniform in +- this angle.
        max_shift: shifts are uniform in +- this fraction of the half-width.
        intensity_jitter: scale in 1 +- this, offset in +- this. Kept small (0.01 = 0.8 HU in the
            40/80 window): CT numbers are calibrated, and an early infarct darkens the brain by
            only 0.05-0.1, the order of the former default 0.05.

    Returns:
        The augmented batch, same shape, dtype and device.
    """
    b, c, d, h, w = volumes.shape
    u = torch.rand(b, 6, generator=generator) * 2 - 1  # uniform in [-1, 1)
    flip = (u[:, 0] > 0).float() * -2 + 1  # -1 = mirror the left-right axis
    angle = u[:, 1] * math.radians(max_rotation_deg)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(b, 2, 3)
    # grid_sample's x is the last axis (j) and y is axis -2 (i); mirroring i is R @ diag(1, flip).
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * flip
    theta[:, 1, 0] = sin
    theta[:, 1, 1] = cos * flip
    theta[:, 0, 2] = u[:, 2] * max_shift
    theta[:, 1, 2] = u[:, 3] * max_shift
    theta = theta.to(volumes.device, volumes.dtype)
    planes = volumes.reshape(b, c * d, h, w)
    grid = F.affine_grid(theta, [b, c * d, h, w], align_corners=False)
    planes = F.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    scale = (1 + u[:, 4] * intensity_jitter).to(volumes.device, volumes.dtype)
    offset = (u[:, 5] * intensity_jitter).to(volumes.device, volumes.dtype)
    planes = planes * scale[:, None, None, None] + offset[:, None, None, None]
    return planes.reshape(b, c, d, h, w).clamp_(0, 1)

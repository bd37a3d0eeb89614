"""A toy cohort of training arrays in the preprocess/split stages' formats, for tests and benchmarks.

HT scans carry a bright blob (hyperdensity) in one hemisphere, so a model can learn the label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_toy_arrays(
    out_dir: str | Path,
    n_patients: int = 24,
    n_slices: int = 28,
    size: int = 32,
    n_channels: int = 1,
    seed: int = 0,
    fractions: tuple[float, float] = (0.2, 0.2),
) -> dict[str, Path]:
    """Write volumes.npy, index.tsv and split.tsv (one scan per patient, alternating labels).

    Args:
        out_dir: folder to write to.
        n_patients: number of patients (= scans).
        n_slices: slices per scan.
        size: in-plane size.
        n_channels: HU windows.
        seed: random seed.
        fractions: shares of patients in the validation and test parts.

    Returns:
        Paths with keys volumes, index, split.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = np.arange(n_patients) % 2
    volumes = rng.normal(0.4, 0.08, size=(n_patients, n_channels, n_slices, size, size)).astype(np.float32)
    zz, yy, xx = np.meshgrid(np.arange(n_slices), np.arange(size), np.arange(size), indexing="ij")
    for i in np.flatnonzero(labels):
        centre = (rng.integers(n_slices // 4, 3 * n_slices // 4), rng.integers(size // 4, 3 * size // 4))
        x_centre = rng.choice([size // 4, 3 * size // 4])
        blob = (
            ((zz - centre[0]) / 3) ** 2
            + ((yy - centre[1]) / (size / 8)) ** 2
            + ((xx - x_centre) / (size / 8)) ** 2
        )
        volumes[i] += 0.4 * (blob < 1)
    volumes = np.clip(volumes, 0, 1).astype(np.float16)
    np.save(out_dir / "volumes.npy", volumes)
    patient_ids = [f"P{i:03d}" for i in range(n_patients)]
    index = pd.DataFrame(
        {
            "row": np.arange(n_patients),
            "scan_id": [f"{p}_scan1" for p in patient_ids],
            "patient_id": patient_ids,
            "label": labels,
        }
    )
    index.to_csv(out_dir / "index.tsv", sep="\t", index=False)
    n_val, n_test = (max(2, round(f * n_patients)) for f in fractions)
    n_val += n_val % 2
    n_test += n_test % 2
    part = np.array(["train"] * n_patients, dtype=object)
    part[:n_val] = "val"  # alternating labels: every part holds both classes
    part[n_val : n_val + n_test] = "test"
    split = pd.DataFrame({"patient_id": patient_ids, "label": labels, "part": part, "fold": -1})
    split.to_csv(out_dir / "split.tsv", sep="\t", index=False)
    return {
        "volumes": out_dir / "volumes.npy",
        "index": out_dir / "index.tsv",
        "split": out_dir / "split.tsv",
    }

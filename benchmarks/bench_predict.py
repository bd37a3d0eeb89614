"""Wall time of `htct predict` for one 28-slice 512x512 CT series on CPU (target: <= 5 s).

Run: python benchmarks/bench_predict.py [--model results/models/ctnet]. Without --model an untrained
CTNet at the demo input size (1x28x96x96) is saved to a temporary folder (timing does not depend on
the weights). Reports the read / preprocess / predict (forward + Grad-CAM) split from prediction.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import yaml

from htct.cli import main as htct_main
from htct.models import create_model
from htct.testing import write_toy_ct_series


def _untrained_model_dir(folder: Path, size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(create_model("ctnet", in_channels=1, n_slices=28).state_dict(), folder / "weights.pt")
    config = {
        "model": {"name": "ctnet", "in_channels": 1, "n_slices": 28, "kwargs": {"conv": "3d"}},
        "input_shape": [1, 28, size, size],
        "preprocess": {"n_slices": 28, "slice_thickness_mm": 5.0, "size": size, "windows": [[40, 80]]},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "threshold.json").write_text(json.dumps({"threshold": 0.5}))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--matrix", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        series = write_toy_ct_series(tmp / "series", n_slices=28, matrix=args.matrix)
        model_dir = args.model or _untrained_model_dir(tmp / "model", 96)
        start = time.perf_counter()
        status = htct_main(["predict", str(series), "--model", str(model_dir), "--out", str(tmp / "out"),
                            "--threads", str(args.threads)])  # fmt: skip
        wall = time.perf_counter() - start
        seconds = json.loads((tmp / "out" / "prediction.json").read_text())["seconds"]
    print(
        f"exit {status}; 28x{args.matrix}x{args.matrix}: {wall:.2f} s in-process (torch already imported); {seconds}"
    )


if __name__ == "__main__":
    main()

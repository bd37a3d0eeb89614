"""htct.train: parts, augmentation, threshold, a learning run, determinism and resume after a crash."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from htct.errors import HTCTInputError
from htct.models import create_model, list_models
from htct.testing.arrays import write_toy_arrays
from htct.train import assign_parts, augment_batch, load_trained_model, train_model, youden_threshold
from htct.train.data import BatchReader, loader_options

FAST = {"device": "cpu", "batch_size": 4, "lr": 3e-3, "threads": 1, "patience": 50}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_arrays(tmp_path_factory.mktemp("toy"), n_patients=40, size=32, seed=1)


def _weights(path):
    return torch.load(path, weights_only=True)


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_assign_parts_single_split_and_fold(toy, tmp_path):
    parts = assign_parts(toy["index"], toy["split"])
    assert [len(parts.rows(p)) for p in ("train", "val", "test")] == [24, 8, 8]
    split = pd.read_csv(toy["split"], sep="\t")
    non_test = split["part"] != "test"
    split.loc[non_test, "part"] = "train"
    split.loc[non_test, "fold"] = np.arange(non_test.sum()) % 4
    split.to_csv(tmp_path / "split.tsv", sep="\t", index=False)
    fold1 = assign_parts(toy["index"], tmp_path / "split.tsv", fold=1)
    assert len(fold1.rows("val")) == 8 and len(fold1.rows("train")) == 24
    assert set(fold1.rows("test")) == set(parts.rows("test"))  # test patients never move
    with pytest.raises(HTCTInputError, match="no patients in fold 7"):
        assign_parts(toy["index"], tmp_path / "split.tsv", fold=7)


def test_assign_parts_refuses_scans_without_split(toy, tmp_path):
    split = pd.read_csv(toy["split"], sep="\t").iloc[1:]
    split.to_csv(tmp_path / "split.tsv", sep="\t", index=False)
    with pytest.raises(HTCTInputError, match="1 patients with scans"):
        assign_parts(toy["index"], tmp_path / "split.tsv")


def test_youden_threshold_separates_perfect_scores():
    result = youden_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.6, 0.9]))
    assert result["threshold"] == pytest.approx(0.6)
    assert (result["sensitivity"], result["specificity"], result["youden_j"]) == (1.0, 1.0, 1.0)
    assert youden_threshold(np.array([1, 1]), np.array([0.2, 0.7]))["threshold"] == 0.5


def test_augment_batch_is_seeded_and_keeps_range():
    volumes = torch.rand(4, 1, 6, 16, 16)
    a = augment_batch(volumes, torch.Generator().manual_seed(3))
    b = augment_batch(volumes, torch.Generator().manual_seed(3))
    assert a.shape == volumes.shape and torch.equal(a, b)
    assert not torch.equal(a, volumes)
    assert a.min() >= 0 and a.max() <= 1
    # Without rotation, shift or jitter only the left-right flip of axis -2 remains.
    flipped = augment_batch(volumes, torch.Generator().manual_seed(3), 0.0, 0.0, 0.0)
    for scan in range(4):
        same = torch.allclose(flipped[scan], volumes[scan], atol=1e-5)
        mirrored = torch.allclose(flipped[scan], volumes[scan].flip(-2), atol=1e-5)
        assert same != mirrored


@pytest.mark.filterwarnings("ignore:.*pin_memory.*:UserWarning")
def test_gpu_loader_workers_deliver_the_batches_of_the_main_process(toy):
    """The GPU path's loading (worker processes, prefetch, pinned memory) changes no batch."""
    assert loader_options(on_gpu=False, num_workers=2)["num_workers"] == 0  # CPU: no workers
    gpu = loader_options(on_gpu=True, num_workers=2)
    assert gpu["num_workers"] == 2 and gpu["pin_memory"] and gpu["prefetch_factor"] == 2
    index = pd.read_csv(toy["index"], sep="\t")
    reader = BatchReader(toy["volumes"], dict(zip(index["row"], index["label"].astype(float), strict=True)))
    batches = [[3, 7, 11], [0, 1, 2], [5, 30, 39], [12]]

    def load(options):
        return list(torch.utils.data.DataLoader(reader, batch_size=None, sampler=batches, **options))

    with_workers, main_process = load(gpu), load(loader_options(on_gpu=False, num_workers=2))
    volumes = np.load(toy["volumes"])
    for rows, (v_workers, y_workers), (v_main, y_main) in zip(
        batches, with_workers, main_process, strict=True
    ):
        assert torch.equal(v_workers, v_main) and torch.equal(y_workers, y_main)
        assert torch.equal(v_main, torch.from_numpy(volumes[rows].astype(np.float32)))
        assert y_main.tolist() == index.set_index("row").loc[rows, "label"].astype(float).tolist()


@pytest.mark.parametrize("model_name", list_models())
def test_models_run_in_bfloat16_autocast_close_to_float32(model_name):
    """The GPU path trains under bf16 autocast on channels-last input; the models must allow it.

    CPU autocast stands in for CUDA's here (same dtype, a similar op list): no GPU on CI.
    """
    torch.manual_seed(0)
    model = create_model(model_name, in_channels=1, n_slices=28).eval()
    model = model.to(memory_format=torch.channels_last_3d)
    x = torch.rand(4, 1, 28, 32, 32).contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        # Nudge the zero-initialised output layer so that the logits depend on the input.
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, std=0.1)
        reference = model(x).float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.dtype == torch.bfloat16  # autocast did run the head in bfloat16
    low = low.float()
    assert low.shape == reference.shape == (4, 1) and torch.isfinite(low).all()
    # bf16 keeps 8 bits of mantissa: logits agree to within 5% of their size.
    assert (low - reference).abs().max() <= 0.05 * reference.abs().max()


def test_training_learns_and_writes_every_output(toy, tmp_path):
    out = tmp_path / "ctnet"
    predictions_tsv = tmp_path / "predictions" / "ctnet.tsv"
    summary = train_model(
        "ctnet", toy["volumes"], toy["index"], toy["split"], out, predictions_tsv=predictions_tsv,
        preprocess={"size": 32, "windows": [[40, 80]]}, epochs=10, **FAST,
    )  # fmt: skip
    for name in (
        "weights.pt",
        "config.yaml",
        "epochs.tsv",
        "threshold.json",
        "checkpoint.pt",
        "training_curve.png",
        "training_curve.pdf",
    ):
        assert (out / name).is_file(), name
    epochs = pd.read_csv(out / "epochs.tsv", sep="\t")
    assert list(epochs.columns) == ["epoch", "train_loss", "val_loss", "val_auc", "lr", "seconds"]
    assert epochs["epoch"].tolist() == list(range(1, 11))
    assert epochs["val_loss"].min() < 0.45  # chance level is ln 2 = 0.693
    assert summary["val_auc"] == 1.0

    predictions = pd.read_csv(predictions_tsv, sep="\t")
    assert list(predictions.columns) == ["patient_id", "scan_id", "split", "y_true", "p_ht", "threshold"]
    parts = assign_parts(toy["index"], toy["split"]).index.set_index("scan_id")["part"]
    assert (predictions["split"].to_numpy() == parts.loc[predictions["scan_id"]].to_numpy()).all()
    assert sorted(predictions["split"].unique()) == ["test", "val"]
    threshold = json.loads((out / "threshold.json").read_text())
    assert np.allclose(predictions["threshold"], threshold["threshold"], rtol=1e-5)

    trained = load_trained_model(out)
    assert trained.preprocess == {"size": 32, "windows": [[40, 80]]}
    assert trained.threshold == threshold["threshold"]
    _assert_same_weights(trained.model.state_dict(), _weights(out / "weights.pt"))


@pytest.mark.parametrize("model_name", ["wozniak2023", "soundari2022"])
def test_cpu_training_is_bit_identical_when_repeated(toy, tmp_path, model_name):
    for run in ("a", "b"):
        train_model(model_name, toy["volumes"], toy["index"], toy["split"], tmp_path / run, epochs=2, **FAST)
    _assert_same_weights(_weights(tmp_path / "a" / "weights.pt"), _weights(tmp_path / "b" / "weights.pt"))
    a, b = (pd.read_csv(tmp_path / run / "predictions.tsv", sep="\t") for run in ("a", "b"))
    pd.testing.assert_frame_equal(a, b)


def test_resume_after_crash_equals_uninterrupted_run(toy, tmp_path):
    config = {"epochs": 4, **FAST}
    train_model("ctnet", toy["volumes"], toy["index"], toy["split"], tmp_path / "whole", **config)

    def crash_after_epoch_2(epoch, row):
        if epoch == 2:
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        train_model(
            "ctnet", toy["volumes"], toy["index"], toy["split"], tmp_path / "crashed",
            epoch_callback=crash_after_epoch_2, **config,
        )  # fmt: skip
    assert not (tmp_path / "crashed" / "weights.pt").exists()
    summary = train_model("ctnet", toy["volumes"], toy["index"], toy["split"], tmp_path / "crashed", **config)
    assert summary["resumed_from"] == 2
    _assert_same_weights(
        _weights(tmp_path / "whole" / "weights.pt"), _weights(tmp_path / "crashed" / "weights.pt")
    )
    final = {
        run: torch.load(tmp_path / run / "checkpoint.pt", weights_only=False)["model"]
        for run in ("whole", "crashed")
    }
    _assert_same_weights(final["whole"], final["crashed"])
    whole, resumed = (pd.read_csv(tmp_path / run / "epochs.tsv", sep="\t") for run in ("whole", "crashed"))
    pd.testing.assert_frame_equal(whole.drop(columns="seconds"), resumed.drop(columns="seconds"))


def test_no_epoch_before_min_epochs_is_selected(toy, tmp_path):
    summary = train_model(
        "soundari2022", toy["volumes"], toy["index"], toy["split"], tmp_path,
        epochs=3, min_epochs=3, **{**FAST, "patience": 1},
    )  # fmt: skip
    assert summary["best_epoch"] == 3 and summary["epochs_run"] == 3  # no early stop before epoch 3
    final = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]
    _assert_same_weights(_weights(tmp_path / "weights.pt"), final)


def test_changed_config_does_not_resume(toy, tmp_path):
    train_model("soundari2022", toy["volumes"], toy["index"], toy["split"], tmp_path, epochs=1, **FAST)
    summary = train_model(
        "soundari2022", toy["volumes"], toy["index"], toy["split"], tmp_path, epochs=1, **{**FAST, "lr": 1e-3}
    )
    assert summary["resumed_from"] == 0
    finished = train_model(
        "soundari2022", toy["volumes"], toy["index"], toy["split"], tmp_path, epochs=1, **{**FAST, "lr": 1e-3}
    )
    assert finished["resumed_from"] == 1 and finished["epochs_run"] == 1


def test_ctnet_2d_mode_trains_and_saves_its_mode(toy, tmp_path):
    train_model(
        "ctnet",
        toy["volumes"],
        toy["index"],
        toy["split"],
        tmp_path,
        epochs=1,
        model_options={"ctnet": {"conv": "2d"}},
        **FAST,
    )
    trained = load_trained_model(tmp_path)
    assert trained.config["model"]["kwargs"] == {"conv": "2d"}
    assert not any(isinstance(m, torch.nn.Conv3d) for m in trained.model.modules())


def test_merge_fold_predictions_pools_validation_and_averages_test(tmp_path):
    from htct.train import merge_fold_predictions

    columns = ["patient_id", "scan_id", "split", "y_true", "p_ht", "threshold"]
    fold0 = pd.DataFrame(
        [
            ["A", "A_scan1", "val", 0, 0.2, 0.5],
            ["B", "B_scan1", "val", 1, 0.7, 0.5],
            ["T", "T_scan1", "test", 1, 0.6, 0.5],
        ],
        columns=columns,
    )
    fold1 = pd.DataFrame(
        [
            ["C", "C_scan1", "val", 0, 0.4, 0.3],
            ["D", "D_scan1", "val", 1, 0.9, 0.3],
            ["T", "T_scan1", "test", 1, 0.8, 0.3],
        ],
        columns=columns,
    )
    for k, fold in enumerate((fold0, fold1)):
        fold.to_csv(tmp_path / f"fold{k}.tsv", sep="\t", index=False)
    merged = merge_fold_predictions([tmp_path / "fold0.tsv", tmp_path / "fold1.tsv"], tmp_path / "merged.tsv")
    assert sorted(merged.loc[merged["split"] == "val", "scan_id"]) == [
        "A_scan1",
        "B_scan1",
        "C_scan1",
        "D_scan1",
    ]
    assert merged.loc[merged["split"] == "test", "p_ht"].tolist() == [pytest.approx(0.7)]
    assert (merged["threshold"] == 0.7).all()  # Youden's J on the pooled out-of-fold scores
    with pytest.raises(ValueError, match="overlap"):
        merge_fold_predictions([tmp_path / "fold0.tsv", tmp_path / "fold0.tsv"], tmp_path / "x.tsv")


def test_train_outputs_from_a_rule_take_the_declared_paths():
    """The script passes snakemake.output (a Namedlist, read by attribute); the curve is a multiext pair."""
    from types import SimpleNamespace

    from htct.train import TrainOutputs

    output = SimpleNamespace(
        weights="m/w.pt", config="m/c.yaml", threshold="m/t.json", epochs="m/e.tsv",
        predictions="p/ctnet.tsv", curve=["m/curve.pdf", "m/curve.png"],
    )  # fmt: skip
    outputs = TrainOutputs.from_rule(output)
    assert outputs.predictions == Path("p/ctnet.tsv") and outputs.curve == Path("m/curve")
    assert outputs.checkpoint == Path("m/checkpoint.pt")
    assert TrainOutputs.from_rule({**vars(output), "curve": "m/curve.png"}).curve == Path("m/curve")


# The validation losses of epochs 10-20 of a default-cohort CTNet run (seed 2 on the 474-patient
# default arrays, 2026-12-07): after epoch 14 the loss creeps down by less than 0.01 per step.
_TAIL = [0.5684, 0.5381, 0.5243, 0.5320, 0.4999, 0.4927, 0.5034, 0.4989, 0.4902, 0.4937, 0.4891]


def _select_sequence(losses, first_epoch, **config):
    """Trainer.select over `losses` (epochs first_epoch, ...); the selected epoch and the stop flags."""
    from types import SimpleNamespace

    from htct.train.checkpoint import TrainingState
    from htct.train.config import TrainConfig
    from htct.train.trainer import Trainer

    fake = SimpleNamespace(
        state=TrainingState(),
        config=TrainConfig.from_mapping({"min_epochs": first_epoch, "epochs": 40, **config}),
        model=torch.nn.Linear(2, 1),
    )
    stops = []
    for epoch, loss in enumerate(losses, start=first_epoch):
        Trainer.select(fake, epoch, loss, float("nan"))
        stops.append(fake.state.stopped)
    return fake.state.best_epoch, stops


def test_min_delta_ignores_improvements_below_it():
    assert _select_sequence(_TAIL, 10, min_delta=0.0)[0] == 20  # every creep counts: the last epoch
    best, stops = _select_sequence(_TAIL, 10, min_delta=0.02, patience=6)
    assert best == 14  # 0.4999 beat epoch 11's 0.5381 by 0.038; no later epoch beats it by 0.02
    assert stops == [False] * 10 + [True]  # six epochs without an improvement of 0.02 after 14
    best, stops = _select_sequence(_TAIL, 10, min_delta=0.02, patience=7)
    assert best == 14 and not any(stops)


def test_min_delta_is_validated():
    from htct.train.config import TrainConfig

    assert TrainConfig.from_mapping({}).min_delta == 0.02  # the schema's default
    with pytest.raises(ValueError, match="min_delta"):
        TrainConfig.from_mapping({"min_delta": -0.1})


def test_constant_schedule_holds_the_peak_rate_after_the_warm_up(toy, tmp_path):
    cfg = {**FAST, "epochs": 4, "warmup_fraction": 0.25, "min_epochs": 4}
    constant = train_model("soundari2022", toy["volumes"], toy["index"], toy["split"], tmp_path / "c",
                           schedule="constant", **cfg)  # fmt: skip
    lr = pd.read_csv(tmp_path / "c" / "epochs.tsv", sep="\t")["lr"].tolist()
    assert lr == pytest.approx([FAST["lr"]] * 4)  # logged after each epoch: the warm-up is epoch 1's steps
    from htct.train.trainer import WarmupThenConstant

    factor = WarmupThenConstant(10)
    assert [factor(0), factor(5), factor(10), factor(1000)] == pytest.approx([0.04, 0.52, 1.0, 1.0])
    train_model("soundari2022", toy["volumes"], toy["index"], toy["split"], tmp_path / "o", **cfg)
    one_cycle = pd.read_csv(tmp_path / "o" / "epochs.tsv", sep="\t")["lr"].tolist()
    assert one_cycle[-1] < FAST["lr"] / 100  # annealed to about zero at the last epoch
    assert constant["epochs_run"] == 4
    with pytest.raises(ValueError, match="schedule"):
        train_model("soundari2022", toy["volumes"], toy["index"], toy["split"], tmp_path / "x",
                    schedule="cosine", **cfg)  # fmt: skip

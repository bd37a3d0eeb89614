"""htct.models: shapes of every model, the residual blocks, the registry and the layer tables in docs."""

from pathlib import Path

import numpy as np
import pytest
import torch

from htct.attribution import gradcam
from htct.models import (
    CTNet,
    GlobalPool,
    InputWindow,
    ResidualBlock1,
    ResidualBlock2,
    count_parameters,
    create_model,
    layer_table,
    layer_table_markdown,
    list_models,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "models.md"
MODEL_VARIANTS = [
    ("ctnet", {"conv": "3d"}),
    ("ctnet", {"conv": "2d"}),
    ("wozniak2023", {}),
    ("soundari2022", {}),
]


def test_registry_lists_the_three_models_and_rejects_unknown_names():
    assert list_models() == ["ctnet", "soundari2022", "wozniak2023"]
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        create_model("resnet")


@pytest.mark.parametrize(("name", "options"), MODEL_VARIANTS)
@pytest.mark.parametrize("in_channels", [1, 2])
def test_each_model_gives_one_logit_per_scan(name, options, in_channels):
    torch.manual_seed(0)
    model = create_model(name, in_channels=in_channels, n_slices=28, **options).eval()
    logits = model(torch.rand(3, in_channels, 28, 32, 32))
    assert logits.shape == (3, 1)
    assert torch.isfinite(logits).all()
    assert hasattr(model, "cam_layer")


def test_ctnet_conv_modes_differ_in_layer_type():
    assert any(isinstance(m, torch.nn.Conv3d) for m in create_model("ctnet", conv="3d").modules())
    model_2d = create_model("ctnet", conv="2d", in_channels=2)
    assert not any(isinstance(m, torch.nn.Conv3d) for m in model_2d.modules())
    assert model_2d.stem[0].in_channels == 2 * 2 * 28  # HU windows x input windows x slices: 2D channels
    with pytest.raises(ValueError, match="conv must be"):
        CTNet(conv="4d")


@pytest.mark.parametrize(("conv", "shape"), [("3d", (2, 8, 14, 16, 16)), ("2d", (2, 8, 16, 16))])
def test_block1_keeps_shape_with_identity_shortcut(conv, shape):
    block = ResidualBlock1(8, conv=conv).eval()
    x = torch.rand(shape)
    assert block(x).shape == x.shape
    # With the residual branch silenced the block is the identity shortcut (then ReLU of x >= 0).
    torch.nn.init.zeros_(block.bn2.weight)
    torch.nn.init.zeros_(block.bn2.bias)
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize(
    ("conv", "shape", "expected"),
    [("3d", (2, 8, 28, 32, 32), (2, 16, 14, 16, 16)), ("2d", (2, 8, 32, 32), (2, 16, 16, 16))],
)
def test_block2_projects_channels_and_stride(conv, shape, expected):
    block = ResidualBlock2(8, 16, stride=2, conv=conv).eval()
    assert block(torch.rand(shape)).shape == expected
    projection = block.projection[0]
    assert projection.kernel_size == ((1, 1, 1) if conv == "3d" else (1, 1))
    assert projection.stride == ((2, 2, 2) if conv == "3d" else (2, 2))
    assert (projection.in_channels, projection.out_channels) == (8, 16)


def test_ctnet_uses_both_block_kinds_and_width_scales_parameters():
    model = create_model("ctnet")
    kinds = [type(m).__name__ for m in model.modules() if isinstance(m, ResidualBlock1 | ResidualBlock2)]
    assert kinds == ["ResidualBlock1", "ResidualBlock2", "ResidualBlock1", "ResidualBlock2", "ResidualBlock1"]
    assert count_parameters(create_model("ctnet", width=16)) > 3 * count_parameters(model)


def test_layer_table_follows_the_forward_pass():
    rows = layer_table(create_model("ctnet"), (1, 28, 32, 32), depth=1)
    assert [r["layer"] for r in rows] == ["input_window", "stem", "stages", "head"]
    assert rows[1]["output_shape"] == (8, 28, 16, 16)  # in-plane /2 (no stem max-pooling), slices kept
    assert rows[-1]["output_shape"] == (1,)
    assert sum(r["parameters"] for r in rows) == count_parameters(create_model("ctnet"))


@pytest.mark.parametrize(("name", "options"), MODEL_VARIANTS)
def test_docs_hold_the_generated_layer_tables(name, options):
    """docs/models.md must be regenerated (python -m htct.models.summary) when a model changes."""
    assert layer_table_markdown(name, **options) in DOCS.read_text()


@pytest.mark.parametrize(("name", "options"), MODEL_VARIANTS)
def test_attention_map_covers_the_scan_grid(name, options):
    torch.manual_seed(0)
    model = create_model(name, **options)
    volume = np.random.default_rng(0).random((1, 28, 32, 32), dtype=np.float32)
    heatmap = gradcam(model, volume)
    assert heatmap.shape == (28, 32, 32)
    assert heatmap.dtype == np.float32
    assert heatmap.min() >= 0 and heatmap.max() <= 1


def test_several_input_windows_give_one_channel_each():
    # Stroke window and full brain window: a hyperdense artery (0.9 = 72 HU) and a normal one
    # (0.6 = 48 HU) look the same in the first (both clamped to 50 HU) and differ in the second.
    window = InputWindow([[0.125, 0.625], [0.0, 1.0]], None)
    assert window.n_windows == 2
    x = torch.tensor([0.6, 0.9]).reshape(1, 1, 2)
    out = window(x)
    assert out.shape == (1, 2, 2)
    torch.testing.assert_close(out[0, 0], torch.tensor([0.9, 1.0]))
    torch.testing.assert_close(out[0, 1], torch.tensor([0.2, 0.8]))
    with pytest.raises(ValueError, match="high > low"):
        InputWindow([[0.1, 0.5], [0.5, 0.2]], None)
    # In CTNet the stem takes one channel per window and input channel, in 3D and 2D mode.
    for conv, stem_in in (("3d", 2), ("2d", 2 * 28)):
        model = create_model("ctnet", conv=conv, input_window=[[0.125, 0.625], [0.0, 1.0]]).eval()
        assert model.stem[0].in_channels == stem_in
        assert model(torch.rand(2, 1, 28, 32, 32)).shape == (2, 1)


def test_input_window_clamps_to_the_stroke_window_and_rescales():
    window = InputWindow(0.125, 0.625)
    x = torch.tensor([0.0, 0.125, 0.375, 0.5, 0.625, 1.0])
    torch.testing.assert_close(window(x), torch.tensor([-1.0, -1.0, 0.0, 0.5, 1.0, 1.0]))
    with pytest.raises(ValueError, match="high > low"):
        InputWindow(0.5, 0.5)
    # The window is part of the model: a skull-bright and a clamped-bright scan look the same to it.
    torch.manual_seed(0)
    model = create_model("ctnet").eval()
    scan = torch.rand(1, 1, 28, 32, 32) * 0.5 + 0.125
    brighter = scan.clone()
    brighter[..., :4, :] = 1.0
    clamped = scan.clone()
    clamped[..., :4, :] = 0.625
    torch.testing.assert_close(model(brighter), model(clamped))


@pytest.mark.parametrize(
    ("conv", "pooled_grid", "unpooled_grid"), [("3d", (28, 16, 16), (28, 32, 32)), ("2d", (16, 16), (32, 32))]
)
def test_stem_pool_switch_halves_the_stage_grid_without_new_weights(conv, pooled_grid, unpooled_grid):
    x = torch.rand(2, 1, 28, 64, 64)
    pooled, unpooled = (CTNet(conv=conv, stem_pool=flag).eval() for flag in (True, False))

    def stem_output(model):
        scan = x.flatten(1, 2) if conv == "2d" else x  # as CTNet.forward
        return model.stem(model.input_window(scan))

    assert tuple(stem_output(pooled).shape[2:]) == pooled_grid
    assert tuple(stem_output(unpooled).shape[2:]) == unpooled_grid
    # The same weights (a max-pooling has none), so weights saved with one setting load into the other.
    assert pooled.state_dict().keys() == unpooled.state_dict().keys()
    unpooled.load_state_dict(pooled.state_dict())
    assert unpooled(x).shape == (2, 1)


@pytest.mark.parametrize(("mode", "n_features"), [("avg", 4), ("max", 4), ("avgmax", 8)])
def test_global_pool_modes(mode, n_features):
    x = torch.zeros(2, 4, 3, 5, 5)
    x[0, 1, 1, 2, 2] = 75.0  # one bright voxel: its maximum is kept, its average diluted
    pooled = GlobalPool(mode)(x)
    assert pooled.shape == (2, n_features)
    if mode != "max":
        assert pooled[0, 1] == pytest.approx(1.0)  # mean over the 75 voxels
    if mode != "avg":
        assert pooled[0, -3] == pytest.approx(75.0)
    with pytest.raises(ValueError, match="pool must be"):
        GlobalPool("median")


@pytest.mark.parametrize("conv", ["3d", "2d"])
def test_fresh_ctnet_predicts_one_half_for_every_scan(conv):
    torch.manual_seed(0)
    model = create_model("ctnet", conv=conv)
    logits = model(torch.rand(4, 1, 28, 32, 32))
    assert torch.equal(logits, torch.zeros(4, 1))
    # ... but the gradient still reaches the fully connected layer, so it learns from step one.
    logits.sum().backward()
    assert model.head.fc.weight.grad.abs().sum() > 0


def test_a_model_added_in_one_file_trains_and_loads(tmp_path):
    """Adding a model is one decorated factory: this test's own toy model trains, saves and loads
    through the same code as CTNet, and tables take its display name from the registry."""
    import torch
    from torch import nn

    from htct.models import display_name, list_models, model_spec, register_model
    from htct.models.registry import unregister_model
    from htct.testing.arrays import write_toy_arrays
    from htct.train import load_trained_model, train_model

    class MeanNet(nn.Module):
        def __init__(self, in_channels: int, n_slices: int, gain: float = 1.0) -> None:
            super().__init__()
            self.norm = nn.BatchNorm1d(in_channels)
            self.fc = nn.Linear(in_channels, 1)
            self.gain = gain
            self.cam_layer = self.norm

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.norm(self.gain * x.amax(dim=(2, 3, 4))))

    @register_model("toymeannet", display_name="Toy MeanNet", default_options={"gain": 2.0})
    def toymeannet(in_channels: int = 1, n_slices: int = 28, **options: object) -> MeanNet:
        return MeanNet(in_channels, n_slices, **options)

    try:
        assert "toymeannet" in list_models()
        assert display_name("toymeannet") == "Toy MeanNet" and display_name("Clinician 3") == "Clinician 3"
        toy = write_toy_arrays(tmp_path / "toy", n_patients=16, size=16)
        train_model(
            "toymeannet", toy["volumes"], toy["index"], toy["split"], tmp_path / "model",
            epochs=2, min_epochs=1, batch_size=4, device="cpu", threads=1,
        )  # fmt: skip
        trained = load_trained_model(tmp_path / "model")
        assert isinstance(trained.model, MeanNet) and trained.model.gain == 2.0  # the registry default
        assert trained.config["model"]["kwargs"] == dict(model_spec("toymeannet").default_options)
    finally:
        unregister_model("toymeannet")
    assert "toymeannet" not in list_models()


def test_registry_names_and_display_names() -> None:
    from htct.models import display_name, list_models, model_spec

    assert list_models() == ["ctnet", "soundari2022", "wozniak2023"]
    assert [display_name(m) for m in ("ctnet", "wozniak2023", "soundari2022")] == [
        "CTNet",
        "Woźniak et al. (2023)",
        "Soundari et al. (2022)",
    ]
    assert model_spec("ctnet").default_options == {"conv": "3d"}
    with pytest.raises(ValueError, match="known models: ctnet"):
        model_spec("resnet")


def test_catalog_is_the_registry() -> None:
    """catalog.yaml (what torch-free steps read) is generated from the registry and must agree."""
    from htct.models.catalog import catalog_text
    from htct.models.registry import CATALOG_PATH

    assert CATALOG_PATH.read_text(encoding="utf-8") == catalog_text(), "run: python -m htct.models.catalog"


def test_tables_get_display_names_without_torch() -> None:
    """The statistics env has no torch: the tables module must not import it (it reads the catalog)."""
    import subprocess
    import sys

    code = "import sys; import htct.tables.reader_study; from htct.models.registry import display_name; "
    code += "assert 'torch' not in sys.modules, 'torch imported'; print(display_name('wozniak2023'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "Woźniak et al. (2023)"

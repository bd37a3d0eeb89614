"""Tests of htct.attribution: Grad-CAM, the exact pooled CAM, occlusion and Integrated Gradients with
their sign convention, the chance levels of the localisation scores, the randomisation check, the
deletion test, the counterfactual test and the stage's tables."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from htct.attribution import attention_mass, gradcam, localisation_scores, methods, pooled_cam, sanity
from htct.attribution.faithfulness import (
    deletion_test,
    enrichment_vs_counterfactual,
    read_counterfactuals,
    summarise_deletion,
    uses_infarct,
)
from htct.attribution.localisation import near_lesion, poisson_binomial_tail, summarise_localisation
from htct.attribution.methods import Method, attribution_maps
from htct.attribution.perturbation import integrated_gradients, occlusion, tissue_baseline
from htct.attribution.stage import (
    LOCALISATION_COLUMNS,
    TESTS,
    AttributionSettings,
    attribute_variant,
    figure_choice,
    summarise_variants,
)
from htct.errors import HTCTInputError
from htct.models import create_model
from htct.models.ctnet import HTPredictor
from htct.testing import write_toy_arrays

# ---------------------------------------------------------------- Grad-CAM (the paper's method)


class RegionGate(nn.Module):
    """Zeroes features outside a fixed region, so the model's output depends only on that region."""

    def __init__(self, region: torch.Tensor):
        super().__init__()
        self.register_buffer("region", region)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.region


class RegionModel(nn.Module):
    """A conv whose non-negative features are summed over one region only: logit [B, 1]."""

    def __init__(self, conv: nn.Module, region: torch.Tensor, slices_as_channels: bool = False):
        super().__init__()
        with torch.no_grad():
            conv.weight.abs_()
        self.cam_layer = nn.Sequential(conv, nn.ReLU(), RegionGate(region))
        self.head = nn.Linear(conv.out_channels, 1)
        with torch.no_grad():
            self.head.weight.fill_(1.0)
        self.slices_as_channels = slices_as_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.cam_layer(x.flatten(1, 2) if self.slices_as_channels else x)
        return self.head(features.flatten(2).sum(dim=2))


def region_model_3d(region: torch.Tensor) -> RegionModel:
    """3D conv at stride 2 (features [B, 4, 14, 16, 16] for 28 x 32 x 32 input)."""
    torch.manual_seed(0)
    return RegionModel(nn.Conv3d(1, 4, 3, stride=2, padding=1), region)


def region_model_2d(region: torch.Tensor, n_slices: int) -> RegionModel:
    """Slices as channels of a 2D conv (as CTNet's 2D variant), in-plane region only."""
    torch.manual_seed(0)
    return RegionModel(nn.Conv2d(n_slices, 4, 3, padding=1), region, slices_as_channels=True)


def test_gradcam_localises_the_region_a_3d_model_reads():
    feature_region = torch.zeros(1, 1, 14, 16, 16)
    feature_region[..., 2:6, 8:14, 1:5] = 1  # asymmetric, so a transposed or flipped map would miss it
    model = region_model_3d(feature_region)
    volume = torch.rand(1, 28, 32, 32, generator=torch.Generator().manual_seed(1))
    heatmap = gradcam(model, volume)
    assert heatmap.shape == (28, 32, 32) and heatmap.dtype == np.float32
    assert heatmap.min() >= 0 and heatmap.max() == pytest.approx(1.0)
    input_region = np.zeros((28, 32, 32), bool)
    input_region[4:12, 16:28, 2:10] = True  # the feature region at stride 2
    assert heatmap[input_region].sum() / heatmap.sum() > 0.8
    assert np.unravel_index(heatmap.argmax(), heatmap.shape) in {tuple(i) for i in np.argwhere(input_region)}
    # A batch gives the same maps as one scan at a time (eval mode: scans do not interact).
    batch = torch.stack([volume, torch.rand(1, 28, 32, 32)])
    np.testing.assert_allclose(gradcam(model, batch)[0], heatmap, atol=1e-6)
    # float16 arrays, as stored in volumes.npy, are accepted.
    assert gradcam(model, volume.numpy().astype(np.float16)).shape == (28, 32, 32)


def test_gradcam_2d_model_broadcasts_over_slices():
    region = torch.zeros(1, 1, 32, 32)
    region[..., 4:12, 20:30] = 1
    model = region_model_2d(region, n_slices=28)
    heatmap = gradcam(model, torch.rand(1, 28, 32, 32))
    assert heatmap.shape == (28, 32, 32)
    np.testing.assert_array_equal(heatmap[0], heatmap[27])
    assert heatmap[:, 4:12, 20:30].sum() / heatmap.sum() > 0.8


def test_gradcam_on_registered_ctnet():
    torch.manual_seed(0)
    for conv in ("3d", "2d"):
        model = create_model("ctnet", in_channels=1, n_slices=28, conv=conv)
        heatmap = gradcam(model, torch.rand(2, 1, 28, 32, 32))
        assert heatmap.shape == (2, 28, 32, 32)
        assert heatmap.min() >= 0 and heatmap.max() <= 1


def test_gradcam_needs_cam_layer():
    with pytest.raises(TypeError, match="cam_layer"):
        gradcam(nn.Linear(2, 1), torch.zeros(1, 1, 2, 2, 2))


# ---------------------------------------------------------------- pooled CAM: exact decomposition


def _ctnet_with_trained_looking_head(conv: str, pool: str, pooled_norm: bool, seed: int = 0) -> nn.Module:
    """A CTNet whose HT predictor is not the fresh zero layer: random fc, batch-norm statistics."""
    torch.manual_seed(seed)
    model = create_model(
        "ctnet", conv=conv, pool=pool, pooled_norm=pooled_norm, width=4 if conv == "3d" else 8
    )
    head = model.head
    with torch.no_grad():
        nn.init.normal_(head.fc.weight)
        nn.init.normal_(head.fc.bias)
        if pooled_norm:
            head.norm.running_mean.normal_()
            head.norm.running_var.uniform_(0.2, 3.0)
            head.norm.weight.normal_()
            head.norm.bias.normal_()
    return model.eval()


@pytest.mark.parametrize(
    ("conv", "pool", "pooled_norm", "size"),
    [("3d", "avgmax", True, 32), ("3d", "avgmax", True, 40), ("3d", "max", False, 32), ("3d", "avg", True, 24),
     ("2d", "avgmax", True, 32)],
)  # fmt: skip
def test_pooled_cam_reproduces_the_logit_exactly(conv, pool, pooled_norm, size):
    model = _ctnet_with_trained_looking_head(conv, pool, pooled_norm)
    x = torch.rand(3, 1, 28, size, size, generator=torch.Generator().manual_seed(1))
    cam = pooled_cam(model, x)
    with torch.no_grad():
        logit = model(x)[:, 0].double()
    torch.testing.assert_close(cam.cells.sum(dim=(1, 2, 3)) + cam.constant, logit, atol=2e-5, rtol=0)
    # The input-grid map keeps every cell's total (for any grid ratio: 40 px gives a 5 x 5 last stage).
    torch.testing.assert_close(cam.voxels.sum(dim=(1, 2, 3)), cam.cells.sum(dim=(1, 2, 3)), atol=1e-9, rtol=0)
    assert cam.voxels.shape == (3, 28, size, size)


def test_pooled_cam_gives_the_max_pooled_evidence_to_the_max_cell_only():
    model = _ctnet_with_trained_looking_head("3d", "max", False)
    with torch.no_grad():
        model.head.fc.weight.zero_()
        model.head.fc.weight[0, 3] = 1.0  # only channel 3's maximum counts
        model.head.fc.bias.zero_()
    x = torch.rand(1, 1, 28, 32, 32, generator=torch.Generator().manual_seed(2))
    cam = pooled_cam(model, x)
    features = model.stages(model.stem(model.input_window(x)))[0, 3]
    expected = torch.zeros_like(cam.cells[0])
    peak = np.unravel_index(int(features.argmax()), features.shape)
    expected[peak] = features.max().double()
    torch.testing.assert_close(cam.cells[0], expected)  # one non-zero cell: the channel's maximum


def test_pooled_cam_of_a_fold_ensemble_is_the_members_mean():
    from htct.train.predict import FoldEnsemble

    members = [_ctnet_with_trained_looking_head("3d", "avgmax", True, seed=s) for s in (0, 1)]
    x = torch.rand(2, 1, 28, 32, 32)
    mean = (pooled_cam(members[0], x).voxels + pooled_cam(members[1], x).voxels).float() / 2
    torch.testing.assert_close(methods()["pooled_cam"].compute(FoldEnsemble(members).eval(), x, None), mean)


# ---------------------------------------------------------------- perturbation methods and the sign


class DarkerRaisesRisk(nn.Module):
    """logit = -sum(weight * x): darker voxels where `weight` > 0 raise the HT logit (an infarct)."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -(x[:, 0] * self.weight).flatten(1).sum(dim=1, keepdim=True)


def boxes(shape: tuple[int, int, int], brain_box: tuple[slice, ...], lesion_box: tuple[slice, ...]):
    """uint8 brain and lesion masks of the given shape: two boxes."""
    brain, lesion = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    brain[brain_box] = 1
    lesion[lesion_box] = 1
    return brain, lesion


@pytest.fixture
def hypodense_case():
    """A brain of healthy tissue (0.45) with a hypodense infarct (0.30) that the model reads."""
    shape = (12, 24, 24)
    brain, lesion = boxes(shape, np.s_[1:11, 3:21, 3:21], np.s_[4:7, 6:11, 12:17])
    rng = np.random.default_rng(0)
    volume = np.where(brain > 0, 0.45, 0.9) + rng.normal(0, 0.002, shape)  # skull-bright outside
    volume[lesion > 0] = 0.30
    weight = torch.zeros(shape)
    weight[2:9, 4:14, 10:19] = 0.01  # the territory the model reads, wider than the lesion
    return volume[None].astype(np.float32), brain, lesion, DarkerRaisesRisk(weight)


def test_healthy_tissue_baseline_is_the_in_brain_median_and_keeps_the_outside():
    volume = torch.arange(2 * 1 * 2 * 2 * 2, dtype=torch.float32).view(2, 1, 2, 2, 2)
    brain = torch.zeros(2, 2, 2, 2, dtype=torch.uint8)
    brain[:, 0] = 1
    baseline = tissue_baseline(volume, brain)
    for b in range(2):
        inside = volume[b, 0, 0]
        assert torch.all(baseline[b, 0, 0] == torch.median(inside))
        torch.testing.assert_close(baseline[b, 0, 1], volume[b, 0, 1])


def test_a_hypodense_infarct_that_raises_risk_is_positive_evidence(hypodense_case):
    volume, brain, lesion, model = hypodense_case
    ig = integrated_gradients(model, volume, brain, n_steps=16)[0].numpy()
    occluded = occlusion(model, volume, brain, patch=(2, 4, 4))[0].numpy()
    for attribution in (ig, occluded):
        assert attribution[lesion > 0].sum() > 0
        scores = localisation_scores(attribution, brain, lesion)
        assert scores["enrichment"] > 3 and scores["pointing_hit"] == 1.0
        assert np.all(attribution[brain == 0] == 0)  # never perturbed outside the brain
    # Completeness: IG sums to f(x) - f(healthy baseline).
    x = torch.from_numpy(volume[None])
    with torch.no_grad():
        difference = model(x) - model(tissue_baseline(x, torch.from_numpy(brain[None])))
    assert ig.sum() == pytest.approx(float(difference), rel=1e-3)
    # The reason for the convention: gradient x input (a zero baseline) marks the same infarct negative.
    x.requires_grad_(True)
    model(x).sum().backward()
    gradient_times_input = (x.grad * x).detach()[0, 0].numpy()
    assert gradient_times_input[lesion > 0].sum() < 0


# ---------------------------------------------------------------- localisation and chance levels


@pytest.fixture
def box_volume():
    """A 10 x 20 x 20 brain box in a 12 x 32 x 32 volume and a 2 x 3 x 3 lesion inside it."""
    return boxes((12, 32, 32), np.s_[1:11, 6:26, 6:26], np.s_[4:6, 10:13, 14:17])


def test_chance_levels_on_a_constructed_volume(box_volume):
    brain, lesion = box_volume
    uniform_brain = brain.astype(float)
    scores = localisation_scores(uniform_brain, brain, lesion)
    assert scores["lesion_chance"] == pytest.approx(18 / 4000)  # the lesion's share of the brain ...
    assert scores["lesion_chance"] != pytest.approx(lesion.mean())  # ... not of all voxels (18 / 12288)
    assert scores["enrichment"] == pytest.approx(1.0)  # a map spread evenly over the brain is at chance
    assert scores["brain_share"] == pytest.approx(1.0)
    everywhere = np.ones(brain.shape)
    scores = localisation_scores(everywhere, brain, lesion)
    assert scores["brain_share"] == pytest.approx(4000 / brain.size)
    assert scores["enrichment"] == pytest.approx(1.0)  # in-brain evidence: chance again
    # Pointing chance: the lesion dilated by +-1 slice, +-2 px (4 x 7 x 7, inside the brain) / brain.
    assert scores["pointing_chance"] == pytest.approx(4 * 7 * 7 / 4000)
    assert near_lesion(lesion > 0).sum() == 4 * 7 * 7
    on_lesion = np.where(lesion > 0, 5.0, 0.0)
    assert localisation_scores(on_lesion, brain, lesion)["enrichment"] == pytest.approx(4000 / 18)


def test_pointing_game_tolerance(box_volume):
    brain, lesion = box_volume
    for peak, hit in (((3, 11, 15), 1.0), ((6, 11, 15), 1.0), ((7, 11, 15), 0.0), ((4, 8, 15), 1.0),
                      ((4, 7, 15), 0.0), ((4, 11, 19), 0.0)):  # fmt: skip
        attribution = np.zeros(brain.shape)
        attribution[peak] = 1.0
        assert localisation_scores(attribution, brain, lesion)["pointing_hit"] == hit, peak
    # A flat patch points at its centre, not its first corner: rows 4-12 -> row 8 (within 2 px of row 10).
    attribution = np.zeros(brain.shape)
    attribution[4:6, 4:13, 12:19] = 1.0
    assert localisation_scores(attribution, brain, lesion)["pointing_hit"] == 1.0


def test_attention_mass_exact_split():
    shape = (8, 16, 16)
    z, y, x = np.indices(shape)
    brain = ((y >= 3) & (y < 13) & (x >= 3) & (x < 13)).astype(np.uint8)
    skull_ring = ((y >= 1) & (y < 15) & (x >= 1) & (x < 15)) & (brain == 0)
    lesion = np.zeros(shape, np.uint8)
    lesion[2:4, 5:8, 5:8] = 1  # 18 voxels, inside the brain
    heatmap = np.zeros(shape)
    heatmap[lesion == 1] = 0.6 / lesion.sum()
    heatmap[skull_ring] = 0.4 / skull_ring.sum()
    mass = attention_mass(heatmap, brain, lesion)
    assert mass["brain"] == pytest.approx(0.6, abs=1e-12)
    assert mass["skull_or_outside"] == pytest.approx(0.4, abs=1e-12)
    assert mass["lesion"] == pytest.approx(0.6, abs=1e-12)
    assert mass["lesion_volume_share"] == pytest.approx(18 / (8 * 16 * 16))
    assert mass["lesion_brain_share"] == pytest.approx(18 / (8 * 10 * 10))
    assert attention_mass(7 * heatmap, brain, lesion)["brain"] == pytest.approx(0.6, abs=1e-12)
    assert np.isnan(attention_mass(heatmap, brain, None)["lesion"])
    assert np.isnan(attention_mass(np.zeros(shape), brain, lesion)["brain"])
    with pytest.raises(ValueError, match="shape"):
        attention_mass(heatmap, brain[:4], lesion)


def _per_scan(maps, brain, lesion, n):
    rows = [localisation_scores(maps[k], brain, lesion) for k in range(n)]
    return pd.DataFrame(rows).assign(
        patient_id=[f"P{k // 2}" for k in range(n)], scan_id=[f"S{k}" for k in range(n)]
    )


def test_summary_verdicts_follow_the_goals(box_volume):
    brain, lesion = box_volume
    rng = np.random.default_rng(0)
    n = 12
    uniform = [brain * rng.uniform(0.5, 1.5, brain.shape) for _ in range(n)]
    focused = [brain * rng.uniform(0, 0.1, brain.shape) + 5.0 * lesion for _ in range(n)]
    at_chance = summarise_localisation(_per_scan(uniform, brain, lesion, n), [0.5, 0.6, 0.7], n_bootstrap=300)
    on_lesion = summarise_localisation(_per_scan(focused, brain, lesion, n), [0.5, 0.6, 0.7], n_bootstrap=300)
    at_chance, on_lesion = at_chance.set_index("metric"), on_lesion.set_index("metric")
    assert at_chance.loc["lesion_enrichment", "estimate"] == pytest.approx(1.0, abs=0.1)
    assert at_chance.loc["lesion_enrichment", "verdict"] == "fail"
    assert at_chance.loc["pointing_hit", "verdict"] == "fail"
    assert on_lesion.loc["lesion_enrichment", "estimate"] > 10
    assert on_lesion.loc["lesion_enrichment", "lower"] > 1
    assert list(on_lesion["verdict"]) == ["pass", "pass", "pass"]  # brain share 1.0 > every random net
    assert on_lesion.loc["pointing_hit", "chance"] == pytest.approx(4 * 7 * 7 / 4000)
    # Lesion metrics on the scans whose infarct is visible only (synthetic truth `visible`).
    mixed = pd.concat(
        [
            _per_scan(focused, brain, lesion, n).assign(visible=True),
            _per_scan(uniform, brain, lesion, n).assign(visible=False),
        ]
    )
    visible_only = summarise_localisation(mixed, [0.5], n_bootstrap=100).set_index("metric")
    assert (
        visible_only.loc["lesion_enrichment", "n_scans"] == visible_only.loc["pointing_hit", "n_scans"] == n
    )
    assert visible_only.loc["lesion_enrichment", "estimate"] > 10
    assert visible_only.loc["brain_share", "n_scans"] == 2 * n
    # Brain share judged against the random networks: a trained share below theirs fails.
    low_bar = summarise_localisation(_per_scan(uniform, brain, lesion, n), [1.0, 1.0, 1.0], n_bootstrap=300)
    assert low_bar.set_index("metric").loc["brain_share", "verdict"] == "fail"
    by_design = summarise_localisation(
        _per_scan(uniform, brain, lesion, n), None, brain_share_applicable=False
    )
    assert by_design.set_index("metric").loc["brain_share", "verdict"] == "not_applicable"


def test_poisson_binomial_tail_is_exact():
    from scipy import stats

    assert poisson_binomial_tail([0.3] * 10, 4) == pytest.approx(stats.binom.sf(3, 10, 0.3))
    assert poisson_binomial_tail([0.5, 1.0], 2) == pytest.approx(0.5)
    assert poisson_binomial_tail([0.2, 0.7], 0) == pytest.approx(1.0)


# ---------------------------------------------------------------- randomisation (Adebayo et al. 2018)


class ToyCNN(nn.Module):
    """A small CNN with CTNet's pooled HT predictor (no batch norm, so train and eval agree)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU())
        self.stages = nn.Sequential(
            nn.Sequential(nn.Sequential(nn.Conv3d(4, 8, 3, stride=2, padding=1), nn.ReLU()))
        )
        self.head = HTPredictor(8, pooled_norm=False, dropout=0.0)
        self.cam_layer = self.stages[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


@pytest.fixture(scope="module")
def toy_trained(tmp_path_factory):
    """ToyCNN trained on the toy cohort (HT scans carry a bright blob), with the blob masks."""
    paths = write_toy_arrays(tmp_path_factory.mktemp("toy"), n_patients=32, n_slices=12, size=24, seed=1)
    volumes = np.load(paths["volumes"]).astype(np.float32)
    labels = torch.from_numpy((np.arange(32) % 2).astype(np.float32))
    torch.manual_seed(0)
    model = ToyCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.from_numpy(volumes)
    for _ in range(20):
        loss = nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = ((model(x)[:, 0] > 0).float() == labels).float().mean()
    assert accuracy == 1.0
    blobs = (volumes[:, 0] > 0.7).astype(np.uint8)  # the blob (0.4 + 0.4) stands above the 0.4 +- 0.08 noise
    brain = np.ones_like(blobs)
    return model, volumes, brain, blobs


class ImageIntensity(nn.Module):
    """Not an explanation: returns the input image, whatever the weights (an 'edge detector')."""


def _intensity_method() -> Method:
    return Method(
        "intensity", "Image intensity", "none", "HU", False, lambda model, x, brain: x[:, 0].clone()
    )


HT_ROWS = [1, 3, 5, 7, 9]


@pytest.mark.parametrize("name", ["pooled_cam", "integrated_gradients"])
def test_randomisation_separates_a_trained_model_from_a_random_one(toy_trained, name):
    model, volumes, brain, blobs = toy_trained
    method = methods(ig_steps=8)[name]
    assert sanity.cascade_blocks(model) == ["head", "stages.0.0", "stem"]
    table, random_maps = sanity.cascading_randomisation(
        model, method, volumes, brain, HT_ROWS, seeds=(0, 1, 2)
    )
    summary = sanity.summarise_randomisation(table).set_index("endpoint")
    assert summary.loc["all", "spearman"] <= 0.2 and summary.loc["all", "verdict"] == "pass"
    assert set(table["seed"]) == {0, 1, 2} and len(random_maps) == 3
    # The trained model's maps find the blob (a random network's may too: random ReLU networks
    # respond to bright blobs, which is why the verdict rests on the rank correlation).
    trained = attribution_maps(model, method, volumes, brain, HT_ROWS)
    hits = [
        localisation_scores(trained[k], brain[r], blobs[r])["pointing_hit"] for k, r in enumerate(HT_ROWS)
    ]
    assert np.mean(hits) == 1.0


def test_randomisation_fails_a_map_that_ignores_the_model(toy_trained):
    model, volumes, brain, _ = toy_trained
    table, _ = sanity.cascading_randomisation(
        model, _intensity_method(), volumes, brain, HT_ROWS[:3], seeds=(0, 1, 2)
    )
    summary = sanity.summarise_randomisation(table)
    assert np.allclose(summary["spearman"], 1.0)
    assert set(summary.loc[summary["endpoint"] != "", "verdict"]) == {"fail"}


def test_randomised_copies_are_reproducible_and_leave_the_model_alone(toy_trained):
    model, volumes, _, _ = toy_trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first, second = sanity.randomised(model, ["head"], 4), sanity.randomised(model, ["head"], 4)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])  # the trained model is not touched
    torch.testing.assert_close(first.head.fc.weight, second.head.fc.weight)
    assert not torch.equal(first.head.fc.weight, model.head.fc.weight)
    torch.testing.assert_close(first.stem[0].weight, model.stem[0].weight)  # only the named blocks change
    # The cascade's last step is the same network as randomising every block at once.
    every = sanity.randomised(model, sanity.cascade_blocks(model), 4)
    stepwise = sanity.randomised(sanity.randomised(model, ["head"], 4), ["stages.0.0", "stem"], 4)
    for a, b in zip(every.parameters(), stepwise.parameters(), strict=True):
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------- deletion


def test_deletion_of_the_top_region_moves_the_logit_more_than_a_random_region(hypodense_case):
    volume, brain, lesion, model = hypodense_case
    n = 8
    volumes = np.repeat(volume[None], n, axis=0)
    brains = np.repeat(brain[None], n, axis=0)
    faithful = integrated_gradients(model, volumes, brains, n_steps=8).numpy()
    table = deletion_test(model, volumes, brains, range(n), faithful, fraction=0.02, n_random=2, seed=1)
    assert (table["drop_top"] > table["drop_random"]).all()
    assert summarise_deletion(table)["verdict"] == "pass"
    # A map pointing away from what the model reads does not pass.
    elsewhere = np.zeros_like(faithful)
    elsewhere[:, 8:10, 16:20, 3:7] = 1.0
    table = deletion_test(model, volumes, brains, range(n), elsewhere, fraction=0.02, n_random=2, seed=1)
    assert summarise_deletion(table)["verdict"] == "fail"


# ---------------------------------------------------------------- counterfactual test


def _counterfactuals(delta: np.ndarray, oracle: np.ndarray, input_kind: str = "full_head") -> pd.DataFrame:
    n = len(delta)
    return pd.DataFrame(
        {
            "patient_id": [f"P{k}" for k in range(n)],
            "scan_id": [f"S{k}" for k in range(n)],
            "split": "test",
            "factor": "infarct",
            "model": "ctnet",
            "input": input_kind,
            "logit": 0.0,
            "logit_counterfactual": delta,
            "delta_logit": delta,
            "oracle_logit": 0.0,
            "oracle_logit_counterfactual": oracle,
            "oracle_delta_logit": oracle,
        }
    )


def test_uses_infarct_from_a_constructed_counterfactual_table(tmp_path):
    rng = np.random.default_rng(0)
    oracle = -rng.uniform(0.2, 2.0, 30)
    tracking = _counterfactuals(0.6 * oracle + rng.normal(0, 0.1, 30), oracle)
    blind = _counterfactuals(rng.normal(0, 0.05, 30), oracle, input_kind="skull_stripped")
    path = tmp_path / "counterfactuals.tsv"
    pd.concat([tracking, blind]).to_csv(path, sep="\t", index=False)
    table = read_counterfactuals(path)
    assert uses_infarct(table, "ctnet", "full_head")["uses_infarct"] == "true"
    blind_result = uses_infarct(table, "ctnet", "skull_stripped")
    assert blind_result["uses_infarct"] == "false" and "Spearman" in blind_result["reason"]
    assert uses_infarct(None, "ctnet", "full_head")["uses_infarct"] == "undecided"
    # Lowering the logit on every scan by the same amount, whatever the infarct's effect, is not use.
    constant = _counterfactuals(-0.5 + rng.normal(0, 0.05, 30), oracle)
    assert uses_infarct(constant, "ctnet", "full_head")["uses_infarct"] == "false"
    # Ranking like the oracle with a negligible change is not use either.
    faint = _counterfactuals(0.01 * oracle, oracle)
    assert uses_infarct(faint, "ctnet", "full_head")["uses_infarct"] == "false"
    # Per-scan enrichment that ranks like the logit drop (-delta) passes; one that does not, fails.
    enrichment = pd.DataFrame({"scan_id": tracking["scan_id"], "enrichment": -tracking["delta_logit"] * 3})
    assert enrichment_vs_counterfactual(enrichment, table, "ctnet", "full_head")["verdict"] == "pass"
    shuffled = enrichment.assign(enrichment=rng.permutation(enrichment["enrichment"].to_numpy()))
    assert enrichment_vs_counterfactual(shuffled, table, "ctnet", "full_head")["verdict"] == "fail"
    assert enrichment_vs_counterfactual(enrichment, None, "ctnet", "full_head")["verdict"] == "not_applicable"


def test_counterfactual_table_without_a_column_is_refused(tmp_path):
    path = tmp_path / "counterfactuals.tsv"
    _counterfactuals(np.zeros(3), np.zeros(3)).drop(columns="oracle_delta_logit").to_csv(
        path, sep="\t", index=False
    )
    with pytest.raises(HTCTInputError, match="oracle_delta_logit"):
        read_counterfactuals(path)


# ---------------------------------------------------------------- the stage


def test_stage_tables_follow_the_interface(toy_trained):
    model, volumes, brain, blobs = toy_trained
    scans = pd.DataFrame(
        {
            "row": range(12),
            "scan_id": [f"S{k}" for k in range(12)],
            "patient_id": [f"P{k // 2}" for k in range(12)],
            "part": ["val"] * 6 + ["test"] * 6,
            "visible": ["True"] * 12,
        }
    )
    settings = AttributionSettings(
        occlusion_patch=(4, 8, 8), ig_steps=4, n_perturbation_scans=3, n_sanity_scans=2,
        n_sanity_scans_expensive=1, n_random_networks=3,
    )  # fmt: skip
    brain = np.zeros_like(blobs)
    brain[:, 1:11, 2:22, 2:22] = 1
    result = attribute_variant(model, volumes, brain, blobs * brain, scans, [1, 3], settings)
    assert set(result.scans["method"]) == {"gradcam", "pooled_cam", "occlusion", "integrated_gradients"}
    assert result.scans["perturbation_subset"].sum() == 4 * 3
    subset = result.scans.loc[result.scans["perturbation_subset"], "part"]
    assert set(subset) == {"test"}  # test scans first: the counterfactual stage renders those
    assert result.case_maps["occlusion"].shape == (2, 12, 24, 24)
    variant = {"scans": result.scans, "randomisation": result.randomisation,
               "random_brain_share": result.random_brain_share}  # fmt: skip
    delta = -np.arange(1, 13) / 4.0
    counterfactuals = _counterfactuals(delta, delta).assign(input="full_head")
    tables = summarise_variants(
        {"full_head": variant, "skull_stripped": variant}, counterfactuals, n_bootstrap=100
    )
    localisation = tables["localisation"]
    assert list(localisation.columns) == LOCALISATION_COLUMNS
    assert set(localisation["metric"]) == {"lesion_enrichment", "pointing_hit", "brain_share"}
    assert set(localisation["verdict"]) <= {"pass", "fail", "not_applicable"}
    assert (localisation.loc[localisation["metric"] == "lesion_enrichment", "chance"] == 1.0).all()
    uses = tables["uses_infarct"].set_index("input")["uses_infarct"]
    assert uses["full_head"] == "true" and uses["skull_stripped"] == "undecided"
    assert list(tables["uses_infarct"].columns) == ["model", "input", "uses_infarct", "reason"]
    choice = figure_choice(tables["verdicts"], "skull_stripped")
    assert choice["input"] == "full_head"  # the variant that uses the infarct, though not the configured one
    mine = tables["verdicts"].query("input == 'full_head'")
    assert choice["n_tests"] - choice["n_pass"] == (mine["n_tests"] - mine["n_pass"]).min()


def _verdict_rows(rows: list[tuple[str, str, str, list[str]]]) -> pd.DataFrame:
    """Verdict rows from (input, method, uses_infarct, failed tests); every other test passes,
    brain share is not applicable to occlusion."""
    records = []
    for input_kind, method, uses, failed in rows:
        verdict = {test: "fail" if test in failed else "pass" for test in TESTS}
        if method == "occlusion":
            verdict["brain_share"] = "not_applicable"
        n_tests = sum(v != "not_applicable" for v in verdict.values())
        n_pass = sum(v == "pass" for v in verdict.values())
        records.append({"input": input_kind, "method": method, "uses_infarct": uses, **verdict,
                        "n_pass": n_pass, "n_tests": n_tests, "passes_all": n_pass == n_tests})  # fmt: skip
    return pd.DataFrame(records)


def test_figure_choice_prefers_a_method_without_failures():
    verdicts = _verdict_rows(
        [
            ("full_head", "gradcam", "undecided", ["lesion_enrichment", "pointing_hit"]),
            ("full_head", "pooled_cam", "undecided", ["pointing_hit"]),
            ("full_head", "occlusion", "undecided", []),
            ("skull_stripped", "occlusion", "undecided", []),
        ]
    )
    choice = figure_choice(verdicts, "full_head")
    assert (choice["input"], choice["method"]) == ("full_head", "occlusion")  # 6 of 6 over 6 of 7
    assert choice["failed"] == ""
    uses = verdicts.assign(uses_infarct=["false", "false", "false", "true"])
    assert figure_choice(uses, "full_head")["input"] == "skull_stripped"  # the variant that uses it
    # A failed localisation test weighs more than a failed counterfactual correlation (12 scans).
    verdicts = _verdict_rows(
        [
            ("full_head", "gradcam", "true", ["lesion_enrichment"]),
            ("full_head", "occlusion", "true", ["enrichment_vs_counterfactual"]),
        ]
    )
    choice = figure_choice(verdicts, "full_head")
    assert choice["method"] == "occlusion" and choice["failed"] == "enrichment_vs_counterfactual"


def test_stage_defaults_are_the_schema_defaults():
    import dataclasses
    from pathlib import Path

    import yaml

    schema = yaml.safe_load((Path(__file__).parents[1] / "schemas/config.schema.yaml").read_text())
    defaults = {
        key: spec["default"] for key, spec in schema["properties"]["attribution"]["properties"].items()
    }
    settings = dataclasses.asdict(AttributionSettings())
    assert {
        key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()
    } == defaults


def test_stage_without_lesion_masks_scores_what_it_can(toy_trained):
    """A real cohort has no lesion masks: no lesion scores, but randomisation, brain share, deletion."""
    model, volumes, brain, _ = toy_trained
    scans = pd.DataFrame(
        {"row": range(8), "scan_id": [f"S{k}" for k in range(8)], "patient_id": [f"P{k}" for k in range(8)],
         "part": "test"}
    )  # fmt: skip
    settings = AttributionSettings(
        methods=["pooled_cam"], n_perturbation_scans=4, n_sanity_scans=2, n_random_networks=3
    )
    result = attribute_variant(model, volumes, brain, None, scans, [0, 1], settings)
    assert result.scans["perturbation_subset"].sum() == 4  # drawn from every scan
    variant = {"scans": result.scans, "randomisation": result.randomisation,
               "random_brain_share": result.random_brain_share}  # fmt: skip
    tables = summarise_variants({"full_head": variant}, None, n_bootstrap=100)
    verdicts = tables["localisation"].set_index("metric")["verdict"]
    assert verdicts["lesion_enrichment"] == verdicts["pointing_hit"] == "not_applicable"
    assert verdicts["brain_share"] in {"pass", "fail"}
    assert tables["verdicts"].loc[0, "deletion"] in {"pass", "fail"}
    assert tables["uses_infarct"].loc[0, "uses_infarct"] == "undecided"

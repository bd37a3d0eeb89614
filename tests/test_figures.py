"""Tests of htct.figures: files and metadata of every figure, Grad-CAM localisation, attention mass,
rule-graph parsing."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.legend import Legend
from matplotlib.patches import FancyBboxPatch
from matplotlib.transforms import Bbox
from PIL import Image
from torch import nn

from htct.evaluate import brier_score, calibration_slope_intercept, calibration_table, delong_ci
from htct.figures import (
    SYNTHETIC_FIGURE_NOTE,
    agreement_figure,
    calibration_figure,
    decision_curve_figure,
    fig1_pipeline,
    fig2_confusion,
    figure_texts,
    parse_rulegraph,
    roc_band,
    supp_fig4_roc,
    topological_levels,
)
from htct.figures.attention import attention_mass, attention_summary, fig3_attention, gradcam
from htct.figures.pipeline import layout_rulegraph
from htct.figures.training import training_curve_figure

# ---------------------------------------------------------------- helpers


def pdf_title(path: Path) -> str:
    """The /Title of a PDF's info dictionary (literal or UTF-16 hex string, as matplotlib writes them)."""
    match = re.search(rb"/Title\s*(\((?:[^()\\]|\\.)*\)|<[0-9A-Fa-f]+>)", path.read_bytes())
    assert match, f"{path} has no /Title"
    raw = match.group(1)
    if raw.startswith(b"<"):
        data = bytes.fromhex(raw[1:-1].decode())
    else:
        data = re.sub(rb"\\(.)", rb"\1", raw[1:-1], flags=re.DOTALL)
    return data[2:].decode("utf-16-be") if data.startswith(b"\xfe\xff") else data.decode("latin-1")


def check_outputs(stem: Path, synthetic: bool, title_start: str | None = None) -> None:
    """PDF and PNG exist and are non-empty, titles carry the note iff synthetic, no Author anywhere."""
    pdf, png = Path(f"{stem}.pdf"), Path(f"{stem}.png")
    assert pdf.stat().st_size > 1000 and png.stat().st_size > 1000
    assert pdf.read_bytes().startswith(b"%PDF")
    assert b"/Author" not in pdf.read_bytes()
    png_text = Image.open(png).text
    assert "Author" not in png_text
    assert png_text["Creator"] == "ctnet-ht"
    for title in (pdf_title(pdf), png_text["Title"]):
        assert (SYNTHETIC_FIGURE_NOTE in title) == synthetic
        if title_start is not None:
            assert title.startswith(title_start)


@pytest.fixture
def cohort():
    """60 scans of 30 patients, three models of decreasing skill, eight readers."""
    rng = np.random.default_rng(7)
    y = np.tile([0, 1], 30)
    patient_ids = np.repeat([f"P{k:03d}" for k in range(30)], 2)
    scores = {
        name: np.clip(y * skill + rng.normal(0.35, 0.2, y.size), 0.001, 0.999)
        for name, skill in (("ctnet", 0.4), ("wozniak2023", 0.2), ("soundari2022", 0.05))
    }
    readers = {
        f"Reader {k + 1}": (np.clip(y * 0.3 + rng.normal(0.35, 0.25, y.size), 0, 1) >= 0.5).astype(int)
        for k in range(8)
    }
    return y, patient_ids, scores, readers


# ---------------------------------------------------------------- performance figures


def test_fig2_confusion_counts_percentages_and_note(tmp_path):
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    calls = {"ctnet": np.array([1, 1, 0, 1, 0, 0, 0, 0])}  # TP 2, FN 1, FP 1, TN 4
    calls |= {f"Reader {k}": np.array([1, 0, 0, 0, 0, 0, 0, 0]) for k in range(1, 9)}
    fig = fig2_confusion(y, calls, tmp_path / "fig2", synthetic=True)
    texts = figure_texts(fig)
    assert SYNTHETIC_FIGURE_NOTE in texts
    assert {"2\n66.7%", "1\n33.3%", "4\n80.0%", "1\n20.0%"} <= set(texts)  # CTNet's row percentages
    assert texts.count("0\n0.0%") == 8  # every reader: no false positives
    assert {"CTNet", "Reader 1", "Reader 8"} <= set(texts)
    meshes = [
        ax.collections[0]
        for ax in fig.axes
        if ax.get_title() in {"CTNet", *(f"Reader {k}" for k in range(1, 9))}
    ]
    assert len(meshes) == 9 and all(mesh.get_clim() == (0, 100) for mesh in meshes)  # one shared scale
    check_outputs(tmp_path / "fig2", synthetic=True, title_start="Figure 2")


def test_fig2_without_synthetic_note(tmp_path):
    y = np.array([0, 1, 0, 1])
    fig = fig2_confusion(y, {"ctnet": y}, tmp_path / "fig2", synthetic=False)
    assert SYNTHETIC_FIGURE_NOTE not in figure_texts(fig)
    check_outputs(tmp_path / "fig2", synthetic=False)


def test_fig2_rejects_non_binary_calls(tmp_path):
    with pytest.raises(ValueError, match="0/1"):
        fig2_confusion([0, 1], {"ctnet": [0.2, 0.7]}, tmp_path / "x", synthetic=True)


def test_roc_band_is_an_ordered_monotone_band(cohort):
    y, patient_ids, scores, _ = cohort
    band = roc_band(y, scores["ctnet"], patient_ids, n_bootstrap=300, seed=1)
    assert band.fpr[0] == 0 and band.fpr[-1] == 1
    assert np.all(band.low <= band.high)
    assert np.all(np.diff(band.low) >= 0) and np.all(np.diff(band.high) >= 0)
    assert band.low.min() >= 0 and band.high.max() <= 1 and band.high[-1] == 1
    again = roc_band(y, scores["ctnet"], patient_ids, n_bootstrap=300, seed=1)
    np.testing.assert_array_equal(band.low, again.low)
    # A perfectly separating score has TPR 1 at any FPR > 0 in every resample.
    perfect = roc_band(y, y * 0.8 + 0.1, patient_ids, n_bootstrap=100, seed=1)
    np.testing.assert_array_equal(perfect.low[1:], 1.0)


def test_supp_fig4_roc_legend_and_reader_points(tmp_path, cohort):
    y, patient_ids, scores, readers = cohort
    band = roc_band(y, scores["ctnet"], patient_ids, n_bootstrap=200)
    fig = supp_fig4_roc(y, scores, readers, tmp_path / "roc", synthetic=True, band=band)
    texts = figure_texts(fig)
    auc, low, high = delong_ci(y, scores["ctnet"])
    assert f"CTNet: AUC {auc:.2f} ({low:.2f}–{high:.2f})" in texts
    assert "CTNet: bootstrap 95% band" in texts
    assert SYNTHETIC_FIGURE_NOTE in texts
    points = {line.get_label(): line for line in fig.axes[0].lines if line.get_label().startswith("Reader")}
    assert len(points) == 8
    call = readers["Reader 3"]
    sensitivity = call[y == 1].mean()
    false_positive_rate = call[y == 0].mean()
    assert points["Reader 3"].get_xdata()[0] == pytest.approx(false_positive_rate)
    assert points["Reader 3"].get_ydata()[0] == pytest.approx(sensitivity)
    check_outputs(tmp_path / "roc", synthetic=True, title_start="Supplementary Figure 4")


def test_calibration_figure_reports_brier(tmp_path, cohort):
    y, _, scores, _ = cohort
    fig = calibration_figure(y, scores, tmp_path / "calibration", synthetic=True)
    legend = " ".join(figure_texts(fig))
    for name, label in (("ctnet", "CTNet"), ("soundari2022", "Soundari 2022")):
        assert f"{label}: Brier {brier_score(y, scores[name]):.3f}" in legend
    assert "slope" in legend and "intercept" in legend
    assert len(fig.axes) == 2  # reliability diagram + histogram
    check_outputs(tmp_path / "calibration", synthetic=True)


def legend_overlaps(fig) -> list[tuple[str, str]]:
    """(legend title, artist) pairs where a legend's box overlaps the box of a data artist: a line,
    marker, band, bar or image of any axes (reference lines such as the diagonal count too)."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    # Axes legends include those kept with add_artist (a second legend on the same axes).
    legends = list(fig.legends) + [a for ax in fig.axes for a in ax.get_children() if isinstance(a, Legend)]
    assert legends, "the figure has no legend"
    found = []
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            for artist in [*ax.lines, *ax.collections, *ax.patches, *ax.images]:
                extent = artist.get_window_extent(renderer)
                if not np.isfinite(extent.extents).all():
                    continue  # an empty artist (e.g. the error bars of no point) covers nothing
                if artist.get_clip_on():  # only the part inside the axes is drawn
                    extent = Bbox.intersection(extent, ax.bbox)
                if artist.get_visible() and extent is not None and box.overlaps(extent):
                    found.append((legend.get_title().get_text(), str(artist.get_label())))
    return found


@pytest.mark.parametrize("n_scans", [16, 60])
def test_no_legend_covers_data_in_the_roc_and_calibration_figures(tmp_path, n_scans):
    rng = np.random.default_rng(n_scans)
    y = np.tile([0, 1], n_scans // 2)
    scores = {
        "ctnet": np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, y.size), 0.01, 0.99),
        "wozniak2023": np.full(y.size, 0.5) + rng.normal(0, 1e-3, y.size),  # near-constant
        "soundari2022": rng.uniform(0, 1, y.size),
    }
    readers = {f"Clinician {k}": (rng.random(y.size) < 0.3 + 0.4 * y).astype(int) for k in range(1, 9)}
    readers["Clinician 8"] = np.zeros(y.size, dtype=int)  # an operating point at (0, 0)
    patient_ids = [f"P{k}" for k in range(y.size)]
    band = roc_band(y, scores["ctnet"], patient_ids, n_bootstrap=100)
    roc = supp_fig4_roc(y, scores, readers, tmp_path / "roc", synthetic=True, band=band)
    assert legend_overlaps(roc) == []
    calibration = calibration_figure(y, scores, tmp_path / "calibration", synthetic=True)
    assert legend_overlaps(calibration) == []
    decision = decision_curve_figure(y, scores, tmp_path / "dca", synthetic=True)
    assert legend_overlaps(decision) == []


def test_legend_check_sees_a_legend_on_the_curves(tmp_path, cohort):
    """The overlap check fails on the old layout: the AUC legend inside the axes, lower right."""
    y, _, scores, readers = cohort
    fig = supp_fig4_roc(y, scores, readers, tmp_path / "roc", synthetic=False)
    inside = fig.axes[0].legend(handles=fig.axes[0].lines[1:4], loc="lower right")
    assert any(title == inside.get_title().get_text() for title, _ in legend_overlaps(fig))


def test_readers_at_one_operating_point_are_all_visible(tmp_path, cohort):
    y, _, scores, _ = cohort
    same = (y == 1).astype(int)
    readers = {"Clinician 1": same, "Clinician 2": same, "Clinician 3": same}  # all at (0, 1)
    fig = supp_fig4_roc(y, scores, readers, tmp_path / "roc", synthetic=False)
    points = [line for line in fig.axes[0].lines if line.get_label().startswith("Clinician")]
    fig.draw_without_rendering()
    centres = [line.get_transform().transform((line.get_xdata()[0], line.get_ydata()[0])) for line in points]
    assert all(line.get_xdata()[0] == 0 and line.get_ydata()[0] == 1 for line in points)  # data unchanged
    xs = sorted(c[0] for c in centres)
    assert min(np.diff(xs)) > 3  # display pixels apart, none hidden under another
    ax_box = fig.axes[0].get_window_extent()
    assert all(ax_box.x0 <= x for x in xs)  # not cut by the axes' edge at FPR 0
    assert all(line.get_zorder() > 2 for line in points)  # above curves and band


def test_calibration_shows_no_slope_for_near_constant_predictions(tmp_path, cohort):
    y, _, scores, _ = cohort
    flat = np.full(y.size, 0.5) + np.random.default_rng(0).normal(0, 1e-3, y.size)
    fig = calibration_figure(
        y, {"ctnet": flat, "wozniak2023": scores["ctnet"]}, tmp_path / "c", synthetic=False
    )
    texts = " ".join(figure_texts(fig))
    assert "CTNet: Brier" in texts and "slope n/a (near-constant predictions), intercept" in texts
    fit = calibration_slope_intercept(y, scores["ctnet"])
    assert f"Wozniak 2023: Brier {brier_score(y, scores['ctnet']):.3f}\nslope {fit.slope:.2f}," in texts
    # 60 scans: 6 quantile bins of 10 scans, each with its Wilson interval.
    assert "6 quantile bins of 10 scans" in texts
    table = calibration_table(y, scores["ctnet"], n_bins=6, strategy="quantile")
    errorbars = [c for c in fig.axes[0].containers if c.get_label().startswith("Wozniak 2023")]
    np.testing.assert_allclose(np.asarray(errorbars[0].lines[0].get_ydata(), dtype=float), table["observed"])
    # Underneath, every scan's prediction, one row per model.
    rows = [collection.get_offsets() for collection in fig.axes[1].collections]
    assert [len(r) for r in rows] == [y.size, y.size]
    np.testing.assert_allclose(np.sort(rows[1][:, 0]), np.sort(scores["ctnet"]))


def test_training_curve_figure(tmp_path):
    epochs = pd.DataFrame(
        {
            "epoch": range(1, 13),
            "train_loss": np.linspace(0.7, 0.3, 12),
            "val_loss": [0.69, 0.66, 0.6, 0.55, 0.52, 0.5, 0.49, 0.5, 0.52, 0.55, 0.57, 0.6],
            "val_auc": np.linspace(0.55, 0.8, 12),
        }
    )
    fig = training_curve_figure(epochs, tmp_path / "curve", "ctnet", best_epoch=7, fold=2, synthetic=True)
    texts = figure_texts(fig)
    assert "CTNet, fold 2: loss" in texts and "ctnet" not in " ".join(texts)
    assert "Kept: epoch 7" in texts and SYNTHETIC_FIGURE_NOTE in texts
    kept = [line for line in fig.axes[0].lines if line.get_label() == "Kept: epoch 7"]
    assert kept[0].get_xdata()[0] == 7
    assert all(tick == int(tick) for tick in fig.axes[0].get_xticks())
    check_outputs(tmp_path / "curve", synthetic=True, title_start="Training curve of CTNet, fold 2")


def test_agreement_figure(tmp_path):
    raters = ["ctnet", "Clinician 1", "Clinician 2"]
    percent = pd.DataFrame([[1, 0.8, 0.7], [0.8, 1, 0.9], [0.7, 0.9, 1]], index=raters, columns=raters)
    kappa = pd.DataFrame([[1, 0.6, 0.4], [0.6, 1, 0.8], [0.4, 0.8, 1]], index=raters, columns=raters)
    fig = agreement_figure(percent, kappa, tmp_path / "agreement", synthetic=False)
    percent_ax, kappa_ax = (
        ax for ax in fig.axes if ax.get_title().startswith(("Percent agreement", "Cohen's kappa"))
    )
    assert [t.get_text() for t in percent_ax.texts] == ["0.80", "0.70", "0.90"]  # lower triangle only
    assert [t.get_text() for t in kappa_ax.texts] == ["0.60", "0.40", "0.80"]
    assert "CTNet" in figure_texts(fig)
    check_outputs(tmp_path / "agreement", synthetic=False)


def test_decision_curve_figure_strategies(tmp_path, cohort):
    y, _, scores, _ = cohort
    fig = decision_curve_figure(y, scores, tmp_path / "dca", synthetic=True)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["CTNet", "Wozniak 2023", "Soundari 2022", "Treat all", "Treat none"]
    treat_all = fig.axes[0].lines[3]
    assert treat_all.get_ydata()[0] == pytest.approx(0.5 - 0.5 * 0.01 / 0.99)  # prevalence 0.5, pt 0.01
    assert fig.axes[0].get_ylim()[1] > y.mean()
    check_outputs(tmp_path / "dca", synthetic=True)


# ---------------------------------------------------------------- figure 1: rule graph

TOY_SNAKEFILE = """
rule all:
    input: "c.txt", "d.txt"
rule a:
    output: "a.txt"
    shell: "touch {output}"
rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "touch {output}"
rule c:
    input: "a.txt", "b.txt"
    output: "c.txt"
    shell: "touch {output}"
rule d:
    input: "a.txt"
    output: "d.txt"
    shell: "touch {output}"
"""


@pytest.fixture(scope="module")
def toy_rulegraph(tmp_path_factory) -> str:
    workdir = tmp_path_factory.mktemp("toy_workflow")
    (workdir / "Snakefile").write_text(TOY_SNAKEFILE)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--rulegraph", "--cores", "1"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_parse_rulegraph_of_a_toy_workflow(toy_rulegraph):
    graph = parse_rulegraph(toy_rulegraph)
    assert sorted(graph.labels.values()) == ["a", "all", "b", "c", "d"]
    assert len(graph.edges) == 6
    by_label = {label: node for node, label in graph.labels.items()}
    named_edges = {(graph.labels[s], graph.labels[t]) for s, t in graph.edges}
    assert named_edges == {("a", "b"), ("a", "c"), ("b", "c"), ("a", "d"), ("c", "all"), ("d", "all")}
    levels = [[graph.labels[n] for n in level] for level in topological_levels(graph)]
    assert (
        levels[0] == ["a"] and sorted(levels[1]) == ["b", "d"] and levels[2] == ["c"] and levels[3] == ["all"]
    )
    layout = layout_rulegraph(graph)
    # a -> c and d -> all skip a level: two virtual points each (top and bottom of that level's
    # boxes), so they run around the boxes between.
    assert len(layout.edge_paths[(by_label["a"], by_label["c"])]) == 4
    assert len(layout.edge_paths[(by_label["d"], by_label["all"])]) == 4
    assert len(layout.edge_paths[(by_label["a"], by_label["b"])]) == 2


def test_parse_rulegraph_errors():
    with pytest.raises(ValueError, match="digraph"):
        parse_rulegraph("rule all:")
    with pytest.raises(ValueError, match="undeclared"):
        parse_rulegraph('digraph g {\n 0[label = "a"];\n 0 -> 1\n}')
    cyclic = parse_rulegraph('digraph g {\n 0[label = "a"];\n 1[label = "b"];\n 0 -> 1\n 1 -> 0\n}')
    with pytest.raises(ValueError, match="cycle"):
        topological_levels(cyclic)


def test_fig1_pipeline_draws_every_rule(tmp_path, toy_rulegraph):
    fig = fig1_pipeline(toy_rulegraph, tmp_path / "fig1", synthetic=True)
    assert {"a", "b", "c", "d", "all"} <= set(figure_texts(fig))
    assert len(fig.axes[0].patches) == 5 + 6  # boxes + arrows
    check_outputs(tmp_path / "fig1", synthetic=True, title_start="Figure 1")


def _boxes_and_labels(fig):
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    ax = fig.axes[0]
    boxes = [patch.get_window_extent(renderer) for patch in ax.patches if isinstance(patch, FancyBboxPatch)]
    labels = {text.get_text(): text.get_window_extent(renderer) for text in ax.texts}
    return boxes, labels


def test_fig1_labels_stay_inside_their_boxes_and_boxes_apart(tmp_path):
    """Long rule names (the workflow's are up to 33 characters) and a wide level: every label
    inside its own box, no two boxes overlapping, rules left out as asked."""
    names = ["synth_cohort", "convert_dicom", "preprocess_skull_strip_comparison", "preprocess"]
    names += ["train_skull_strip_comparison", "lesion_masks", "train", "split", "table1", "evaluate"]
    names += ["figure_page", "all"]
    nodes = "\n".join(
        f'    {k}[label = "{name}", color = "0.1 0.6 0.85", style="rounded"];' for k, name in enumerate(names)
    )
    edges = [(0, k) for k in range(1, 10)] + [(1, 2), (1, 3), (2, 4), (3, 5), (3, 6), (7, 6), (6, 9), (9, 10)]
    edges += [(k, 11) for k in range(1, 11)]
    dot = "digraph snakemake_dag {\n" + nodes + "\n" + "\n".join(f"    {a} -> {b}" for a, b in edges) + "\n}"
    fig = fig1_pipeline(dot, tmp_path / "fig1", synthetic=False, omit=["all", "figure_page"])
    boxes, labels = _boxes_and_labels(fig)
    assert len(boxes) == 10 and "all" not in labels and "figure_page" not in labels
    for text, extent in labels.items():
        inside = [box for box in boxes if box.contains(*extent.p0) and box.contains(*extent.p1)]
        assert len(inside) == 1, text  # the label fits in one box, its own
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)
    with pytest.raises(ValueError, match="consume"):
        fig1_pipeline(dot, tmp_path / "bad", synthetic=False, omit=["evaluate"])


# ---------------------------------------------------------------- attention


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
    # Scaling the map changes nothing; no lesion mask gives NaN; an empty map gives NaN.
    assert attention_mass(7 * heatmap, brain, lesion)["brain"] == pytest.approx(0.6, abs=1e-12)
    assert np.isnan(attention_mass(heatmap, brain, None)["lesion"])
    assert np.isnan(attention_mass(np.zeros(shape), brain, lesion)["brain"])
    with pytest.raises(ValueError, match="shape"):
        attention_mass(heatmap, brain[:4], lesion)


class RegionGate(nn.Module):
    """Zeroes features outside a fixed region, so the model's output depends only on that region."""

    def __init__(self, region: torch.Tensor):
        super().__init__()
        self.register_buffer("region", region)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.region


class RegionModel3d(nn.Module):
    """3D conv at stride 2 whose features are summed over one region only: logit [B, 1]."""

    def __init__(self, region: torch.Tensor):
        super().__init__()
        torch.manual_seed(0)
        conv = nn.Conv3d(1, 4, 3, stride=2, padding=1)
        with torch.no_grad():
            conv.weight.abs_()
        self.cam_layer = nn.Sequential(conv, nn.ReLU(), RegionGate(region))
        self.head = nn.Linear(4, 1)
        with torch.no_grad():
            self.head.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cam_layer(x).sum(dim=(2, 3, 4)))


class RegionModel2d(nn.Module):
    """Slices as channels of a 2D conv (as CTNet's 2D variant), in-plane region only."""

    def __init__(self, region: torch.Tensor, n_slices: int):
        super().__init__()
        torch.manual_seed(0)
        conv = nn.Conv2d(n_slices, 4, 3, padding=1)
        with torch.no_grad():
            conv.weight.abs_()
        self.cam_layer = nn.Sequential(conv, nn.ReLU(), RegionGate(region))
        self.head = nn.Linear(4, 1)
        with torch.no_grad():
            self.head.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cam_layer(x.flatten(1, 2)).sum(dim=(2, 3)))


def test_gradcam_localises_the_region_a_3d_model_reads():
    feature_region = torch.zeros(1, 1, 14, 16, 16)
    feature_region[..., 2:6, 8:14, 1:5] = 1  # asymmetric, so a transposed or flipped map would miss it
    model = RegionModel3d(feature_region)
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
    model = RegionModel2d(region, n_slices=28)
    heatmap = gradcam(model, torch.rand(1, 28, 32, 32))
    assert heatmap.shape == (28, 32, 32)
    np.testing.assert_array_equal(heatmap[0], heatmap[27])
    assert heatmap[:, 4:12, 20:30].sum() / heatmap.sum() > 0.8


def test_gradcam_on_registered_ctnet():
    from htct.models import create_model

    torch.manual_seed(0)
    for conv in ("3d", "2d"):
        model = create_model("ctnet", in_channels=1, n_slices=28, conv=conv)
        heatmap = gradcam(model, torch.rand(2, 1, 28, 32, 32))
        assert heatmap.shape == (2, 28, 32, 32)
        assert heatmap.min() >= 0 and heatmap.max() <= 1


def test_gradcam_needs_cam_layer():
    with pytest.raises(TypeError, match="cam_layer"):
        gradcam(nn.Linear(2, 1), torch.zeros(1, 1, 2, 2, 2))


def test_attention_summary_and_fig3(tmp_path):
    feature_region = torch.zeros(1, 1, 14, 16, 16)
    feature_region[..., 2:6, 8:14, 1:5] = 1
    model = RegionModel3d(feature_region)
    rng = np.random.default_rng(3)
    volumes = rng.random((3, 1, 28, 32, 32)).astype(np.float16)
    brain = np.zeros((3, 28, 32, 32), np.uint8)
    brain[:, :, 8:30, 0:14] = 1  # holds the region the model reads
    lesion = np.zeros_like(brain)
    lesion[:, 6:10, 18:24, 4:8] = 1
    lesion[:, 7, 17:25, 3:9] = 1  # the largest lesion area: index 7, "slice 8" (1-based)
    table = attention_summary(model, volumes, brain, lesion, rows=[0, 2], scan_ids=["S0", "S2"], batch_size=1)
    assert list(table["scan_id"]) == ["S0", "S2", "mean"]
    assert list(table["row"].iloc[:2]) == [0, 2] and table["row"].isna().iloc[2]
    assert (table["brain"].iloc[:2] > 0.8).all()
    np.testing.assert_allclose(table["brain"] + table["skull_or_outside"], 1.0)
    assert table["lesion"].iloc[2] == pytest.approx(table["lesion"].iloc[:2].mean())
    assert table["lesion_volume_share"].iloc[0] == pytest.approx(lesion[0].mean())

    heatmaps = {row: gradcam(model, volumes[row]) for row in (0, 2)}
    cases = [("Visible lesion", 0, None), ("Barely visible lesion", 2, 5)]
    fig = fig3_attention(volumes, heatmaps, lesion, cases, tmp_path / "fig3", synthetic=True)
    texts = figure_texts(fig)
    assert "Visible lesion\nslice 8" in texts
    assert "Barely visible lesion\nslice 6" in texts
    assert SYNTHETIC_FIGURE_NOTE in texts
    check_outputs(tmp_path / "fig3", synthetic=True, title_start="Figure 3")


def test_tiny_test_sets_do_not_break_the_figures(tmp_path):
    """The tiny workflow config has a handful of test scans: DeLong and the logistic fit are undefined."""
    y = np.array([1, 1, 0])
    scores = {"ctnet": np.array([0.9, 0.8, 0.1]), "wozniak2023": np.array([0.2, 0.6, 0.4])}
    band = roc_band(y, scores["ctnet"], ["a", "b", "c"], n_bootstrap=50)
    fig = supp_fig4_roc(y, scores, {"R1": np.array([1, 0, 0])}, tmp_path / "roc", synthetic=True, band=band)
    assert {"CTNet: AUC 1.00 (CI n/a)", "Wozniak 2023: AUC 0.50 (CI n/a)"} <= set(figure_texts(fig))
    fig = calibration_figure(y, scores, tmp_path / "calibration", synthetic=True)
    assert any(
        t.startswith("CTNet: Brier 0.020\nslope n/a, intercept n/a\n") for t in figure_texts(fig)
    )  # separated
    one_class = np.array([1, 1, 1])
    fig = supp_fig4_roc(one_class, scores, {}, tmp_path / "roc1", synthetic=True)
    assert "CTNet: AUC n/a" in figure_texts(fig)
    decision_curve_figure(one_class, scores, tmp_path / "dca1", synthetic=True)
    check_outputs(tmp_path / "dca1", synthetic=True)

"""Tests of htct.figures: files and metadata of every figure, figure 3's layout, rule-graph parsing."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.legend import Legend
from matplotlib.patches import FancyBboxPatch
from matplotlib.transforms import Bbox
from PIL import Image

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
from htct.figures.attention import Fig3Case, fig3_attention
from htct.figures.pipeline import layout_rulegraph
from htct.figures.training import training_curve_figure
from htct.names import display_name

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
    # the legend says which interval it gives (the tables print the patient-bootstrap one)
    assert "AUC (95% CI by DeLong, scans as units;\ntables 2–3 print the patient-bootstrap CI)" in texts
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
    for name, label in (("ctnet", "CTNet"), ("soundari2022", display_name("soundari2022"))):
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
    assert (
        f"{display_name('wozniak2023')}: Brier {brier_score(y, scores['ctnet']):.3f}\nslope {fit.slope:.2f},"
        in texts
    )
    # 60 scans: 6 quantile bins of 10 scans, each with its Wilson interval.
    assert "6 quantile bins of 10 scans" in texts
    table = calibration_table(y, scores["ctnet"], n_bins=6, strategy="quantile")
    errorbars = [c for c in fig.axes[0].containers if c.get_label().startswith(display_name("wozniak2023"))]
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
    assert labels == [
        "CTNet",
        display_name("wozniak2023"),
        display_name("soundari2022"),
        "Treat all",
        "Treat none",
    ]
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


# ---------------------------------------------------------------- figure 3


def test_fig3_two_cases_ct_beside_the_map_scaled_to_its_range(tmp_path):
    rng = np.random.default_rng(3)
    ct = rng.random((2, 28, 32, 32)).astype(np.float32)
    lesion = np.zeros((2, 28, 32, 32), np.uint8)
    lesion[:, 6:10, 18:24, 4:8] = 1
    lesion[:, 7, 17:25, 3:9] = 1  # the largest lesion area: index 7, "slice 8" (1-based)
    attribution = rng.normal(0, 1e-3, (2, 28, 32, 32))  # signed, small values (logit per voxel)
    attribution[0][lesion[0] > 0] += 0.02
    cases = [
        Fig3Case("Visible infarct", ct[0], attribution[0], lesion[0]),
        Fig3Case("Infarct not yet visible", ct[1], attribution[1], lesion[1], slice_index=6, note="spread"),
    ]
    fig = fig3_attention(cases, tmp_path / "fig3", True, "logit contribution per voxel", "Colours: evidence.")
    texts = figure_texts(fig)
    assert "Visible infarct, slice 8" in texts and "Infarct not yet visible, slice 7" in texts
    assert {"a", "b", "Colours: evidence.", "spread", SYNTHETIC_FIGURE_NOTE} <= set(texts)
    # Each row's colour scale runs from 0 to the map's maximum on its slice, not to a fixed 1.
    overlays = [ax.images[1] for ax in fig.axes if len(ax.images) == 2]
    assert len(overlays) == 2
    for overlay, case, slice_index in zip(overlays, cases, (7, 6), strict=True):
        low, high = overlay.get_clim()
        assert low == 0 and high == pytest.approx(
            np.maximum(case.attribution[slice_index], 0).max(), rel=1e-5
        )
    assert sum(len(ax.collections) > 0 for ax in fig.axes if ax.images) == 4  # the outline on CT and map
    check_outputs(tmp_path / "fig3", synthetic=True, title_start="Figure 3")


def test_tiny_test_sets_do_not_break_the_figures(tmp_path):
    """The tiny workflow config has a handful of test scans: DeLong and the logistic fit are undefined."""
    y = np.array([1, 1, 0])
    scores = {"ctnet": np.array([0.9, 0.8, 0.1]), "wozniak2023": np.array([0.2, 0.6, 0.4])}
    band = roc_band(y, scores["ctnet"], ["a", "b", "c"], n_bootstrap=50)
    fig = supp_fig4_roc(y, scores, {"R1": np.array([1, 0, 0])}, tmp_path / "roc", synthetic=True, band=band)
    assert {"CTNet: AUC 1.00 (CI n/a)", f"{display_name('wozniak2023')}: AUC 0.50 (CI n/a)"} <= set(
        figure_texts(fig)
    )
    fig = calibration_figure(y, scores, tmp_path / "calibration", synthetic=True)
    assert any(
        t.startswith("CTNet: Brier 0.020\nslope n/a, intercept n/a\n") for t in figure_texts(fig)
    )  # separated
    one_class = np.array([1, 1, 1])
    fig = supp_fig4_roc(one_class, scores, {}, tmp_path / "roc1", synthetic=True)
    assert "CTNet: AUC n/a" in figure_texts(fig)
    decision_curve_figure(one_class, scores, tmp_path / "dca1", synthetic=True)
    check_outputs(tmp_path / "dca1", synthetic=True)


def test_fig3_without_lesion_truth_shows_the_extremes_of_predicted_risk_and_no_outline(tmp_path):
    from htct.figures.attention import fig3_from_cases
    from htct.figures.cases import choose_cases

    test = pd.DataFrame({"row": [4, 7, 9, 12], "scan_id": list("abcd"), "label": [0, 1, 1, 0]})
    p_ht = {4: 0.30, 7: 0.55, 9: 0.81, 12: 0.12}
    cases = choose_cases(test, None, p_ht)
    assert cases == [("Highest predicted risk: p(HT) 0.81, HT", 9, None),
                     ("Lowest predicted risk: p(HT) 0.12, no HT", 12, None)]  # fmt: skip
    assert choose_cases(test, None) == [("HT", 7, None), ("No HT", 4, None)]  # no predictions either
    rng = np.random.default_rng(0)
    stored = {
        "titles": np.array([title for title, _, _ in cases]),
        "volumes": rng.random((2, 1, 28, 32, 32)).astype(np.float32),
        "brain": np.ones((2, 28, 32, 32), np.uint8),
        "map_gradcam": rng.random((2, 28, 32, 32)).astype(np.float32),
    }
    choice = {
        "input": "full_head",
        "method": "gradcam",
        "uses_infarct": "undecided",
        "n_pass": 2,
        "n_tests": 3,
    }
    fig = fig3_from_cases(stored, choice, {}, tmp_path / "fig3", synthetic=False)
    text = " ".join(figure_texts(fig))
    assert "Highest predicted risk: p(HT) 0.81, HT, slice" in text
    assert (
        "Cases: the test scans of highest and lowest predicted HT risk (no lesion truth in this run)." in text
    )
    for claim in ("outline", "synthetic", "visible", "Visible"):
        assert claim not in text, claim
    assert not any(ax.collections for ax in fig.axes if ax.images)  # no contour drawn

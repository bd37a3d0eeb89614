"""Tests of htct.figures: files and metadata of every figure, figure 3's layout, rule-graph parsing."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from htct.evaluate import brier_score, delong_ci
from htct.figures import (
    SYNTHETIC_FIGURE_NOTE,
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
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 9 and all(im.get_clim() == (0, 100) for im in images)  # one shared scale
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
    # a -> c and d -> all skip a level: one virtual point each, so they bend around the boxes between.
    assert len(layout.edge_paths[(by_label["a"], by_label["c"])]) == 3
    assert len(layout.edge_paths[(by_label["d"], by_label["all"])]) == 3
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
    assert {"CTNet: AUC 1.00 (CI n/a)", "Wozniak 2023: AUC 0.50 (CI n/a)"} <= set(figure_texts(fig))
    fig = calibration_figure(y, scores, tmp_path / "calibration", synthetic=True)
    assert "CTNet: Brier 0.020\nslope n/a, intercept n/a" in figure_texts(fig)  # perfectly separated
    one_class = np.array([1, 1, 1])
    fig = supp_fig4_roc(one_class, scores, {}, tmp_path / "roc1", synthetic=True)
    assert "CTNet: AUC n/a" in figure_texts(fig)
    decision_curve_figure(one_class, scores, tmp_path / "dca1", synthetic=True)
    check_outputs(tmp_path / "dca1", synthetic=True)

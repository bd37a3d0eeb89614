"""Figure 1: the workflow's own rule graph (``snakemake --rulegraph``) drawn with matplotlib.

The paper's fig. 1 is its method framework; here the framework is the workflow itself, so the
figure is generated from the DOT text Snakemake prints rather than drawn by hand. No graphviz
binary is needed (none is installed on our machines): the DOT subset Snakemake writes is parsed
here and laid out by topological level.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

from htct.figures.style import DOUBLE_COLUMN_IN, OKABE_ITO, figure_style, new_figure, save_figure

_NODE = re.compile(r"^\s*(\w+)\s*\[(.*)\]\s*;?\s*$")
_EDGE = re.compile(r"^\s*(\w+)\s*->\s*(\w+)\s*(\[.*\])?\s*;?\s*$")
_LABEL = re.compile(r'label\s*=\s*"((?:[^"\\]|\\.)*)"')
_DOT_KEYWORDS = {"graph", "node", "edge", "digraph", "subgraph"}


@dataclass(frozen=True)
class RuleGraph:
    """A parsed rule graph.

    Attributes:
        labels: node id -> label (the rule name), in file order.
        edges: ``(source, target)`` pairs; Snakemake draws an edge from a rule to the rule that
            consumes its output, so sources come first in the workflow.
    """

    labels: dict[str, str]
    edges: list[tuple[str, str]]


def parse_rulegraph(dot: str) -> RuleGraph:
    """Parse the DOT text of ``snakemake --rulegraph`` (or ``--dag``) into nodes and edges.

    Only the constructs Snakemake emits are understood: one node or edge statement per line,
    ``id[label = "...", ...]`` and ``a -> b``. Escaped newlines in labels (``--dag`` wildcards)
    become line breaks.

    Args:
        dot: the DOT text.

    Returns:
        A :class:`RuleGraph`.

    Raises:
        ValueError: when no ``digraph`` is found or an edge names an unknown node.
    """
    if "digraph" not in dot:
        raise ValueError("not a DOT digraph (expected the output of `snakemake --rulegraph`)")
    labels: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for line in dot.splitlines():
        edge = _EDGE.match(line)
        if edge:
            edges.append((edge.group(1), edge.group(2)))
            continue
        node = _NODE.match(line)
        if node and node.group(1) not in _DOT_KEYWORDS:
            label = _LABEL.search(node.group(2))
            text = label.group(1) if label else node.group(1)
            labels[node.group(1)] = text.replace("\\n", "\n").replace('\\"', '"')
    unknown = {n for edge in edges for n in edge} - set(labels)
    if unknown:
        raise ValueError(f"edges name undeclared node(s) {sorted(unknown)}")
    return RuleGraph(labels=labels, edges=edges)


def omit_rules(graph: RuleGraph, names: Iterable[str]) -> RuleGraph:
    """The graph without the rules labelled `names` and their edges (e.g. ``all`` and the rules that
    only build the report, which are not part of the method a figure 1 shows).

    A rule between two kept ones would leave a gap in the data flow, so only rules no kept rule
    depends on may be left out.

    Raises:
        ValueError: when a kept rule consumes the output of a left-out one.
    """
    names = set(names)
    dropped = {node for node, label in graph.labels.items() if label in names}
    bridging = sorted(graph.labels[s] for s, t in graph.edges if s in dropped and t not in dropped)
    if bridging:
        raise ValueError(f"cannot leave out {bridging}: kept rules consume their outputs")
    return RuleGraph(
        labels={node: label for node, label in graph.labels.items() if node not in dropped},
        edges=[(s, t) for s, t in graph.edges if s not in dropped and t not in dropped],
    )


def wrap_rule_name(name: str, max_chars: int = 18) -> str:
    """A long rule name on two lines, broken at the underscore nearest its middle."""
    if len(name) <= max_chars or "_" not in name:
        return name
    cuts = [k for k, char in enumerate(name) if char == "_"]
    cut = min(cuts, key=lambda k: abs(k - len(name) / 2))
    return f"{name[: cut + 1]}\n{name[cut + 1 :]}"


def topological_levels(graph: RuleGraph) -> list[list[str]]:
    """Nodes grouped by level: level of a node = longest path to it from a source.

    Within a level, nodes are ordered by the mean position of their parents (barycentre
    heuristic), which removes most edge crossings in graphs of this size.

    Args:
        graph: the parsed graph.

    Returns:
        Levels top to bottom, each a list of node ids.

    Raises:
        ValueError: when the graph has a cycle.
    """
    parents: dict[str, list[str]] = {node: [] for node in graph.labels}
    for source, target in graph.edges:
        parents[target].append(source)
    try:
        order = list(TopologicalSorter(parents).static_order())
    except CycleError as error:
        raise ValueError(f"rule graph has a cycle: {error.args[1]}") from None
    level: dict[str, int] = {}
    for node in order:
        level[node] = 1 + max((level[p] for p in parents[node]), default=-1)
    levels: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    file_order = {node: k for k, node in enumerate(graph.labels)}
    for node in sorted(level, key=file_order.__getitem__):
        levels[level[node]].append(node)
    position: dict[str, float] = {}
    for nodes in levels:
        nodes.sort(key=lambda n: np.mean([position[p] for p in parents[n]]) if parents[n] else file_order[n])
        for k, node in enumerate(nodes):
            position[node] = k - (len(nodes) - 1) / 2
    return levels


Point = tuple[float, float]


@dataclass(frozen=True)
class RuleGraphLayout:
    """Positions of a layered drawing of a rule graph (data units: one level = 1, one rule box ~1 wide).

    Attributes:
        levels: real nodes per level, top to bottom, in drawing order.
        xy: centre of each rule's box.
        edge_paths: ``(source, target)`` -> polyline from the source box's bottom through the
            virtual points of the levels it crosses (two each: at the top and the bottom of the
            level's boxes) to the target box's top.
    """

    levels: list[list[str]]
    xy: dict[str, Point]
    edge_paths: dict[tuple[str, str], list[Point]]


def layout_rulegraph(
    graph: RuleGraph,
    box_height: float = 0.42,
    sweeps: int = 8,
    widths: Mapping[str, float] | None = None,
    gap: float = 0.14,
    level_height: float = 1.0,
    virtual_width: float = 0.3,
) -> RuleGraphLayout:
    """Layered (Sugiyama-style) layout: longest-path levels, virtual nodes on long edges, barycentres.

    Edges that skip levels get one virtual point per crossed level, ordered with the rules, so they
    run between boxes instead of through them; alternating downward/upward barycentre sweeps then
    reduce crossings. Written here because the usual tool for this (graphviz ``dot``) is a binary
    we do not have.

    Then each box is pulled towards the mean position of its neighbours (a few passes, keeping the
    order and at least `gap` between neighbouring boxes of their own width), so edges run short and
    straight instead of detouring to the margins.

    Args:
        graph: the parsed graph.
        box_height: height of a rule box (edges attach to its top and bottom).
        sweeps: number of down+up barycentre sweeps.
        widths: width of each rule's box (default 1); labels must fit inside.
        gap: least horizontal space between neighbouring boxes (or edge points).
        level_height: vertical distance between levels.
        virtual_width: width reserved for an edge passing through a level.

    Returns:
        A :class:`RuleGraphLayout`.
    """
    real_levels = topological_levels(graph)
    level = {node: depth for depth, nodes in enumerate(real_levels) for node in nodes}
    layers: list[list] = [list(nodes) for nodes in real_levels]
    chains: dict[tuple[str, str], list] = {}
    for source, target in graph.edges:
        dummies = [("virtual", source, target, depth) for depth in range(level[source] + 1, level[target])]
        for dummy in dummies:
            layers[dummy[3]].append(dummy)
        chains[(source, target)] = [source, *dummies, target]
    up: dict = {n: [] for layer in layers for n in layer}
    down: dict = {n: [] for layer in layers for n in layer}
    for chain in chains.values():
        for upper, lower in zip(chain, chain[1:], strict=False):
            down[upper].append(lower)
            up[lower].append(upper)

    def reorder(layer: list, neighbours: dict, position: dict) -> None:
        current = {n: k for k, n in enumerate(layer)}
        layer.sort(
            key=lambda n: np.mean([position[m] for m in neighbours[n]]) if neighbours[n] else current[n]
        )

    for _ in range(sweeps):
        for direction in (range(1, len(layers)), range(len(layers) - 2, -1, -1)):
            for depth in direction:
                neighbour_layer = layers[depth - 1] if direction.step == 1 else layers[depth + 1]
                position = {n: k for k, n in enumerate(neighbour_layer)}
                reorder(layers[depth], up if direction.step == 1 else down, position)

    def slot(node: object) -> float:
        return virtual_width if isinstance(node, tuple) else float((widths or {}).get(node, 1.0))

    x: dict = {}
    for layer in layers:
        total = sum(slot(n) for n in layer) + gap * (len(layer) - 1)
        left = -total / 2
        for node in layer:
            x[node] = left + slot(node) / 2
            left += slot(node) + gap

    def pull(layer: list) -> None:
        """Move the layer's nodes towards their neighbours' mean x, keeping order and spacing."""
        desired = [np.mean([x[m] for m in up[n] + down[n]]) if up[n] + down[n] else x[n] for n in layer]
        placed = list(desired)
        for k in range(1, len(layer)):
            least = placed[k - 1] + (slot(layer[k - 1]) + slot(layer[k])) / 2 + gap
            placed[k] = max(placed[k], least)
        shift = float(np.mean(np.subtract(desired, placed)))
        # Shifting the whole layer keeps the spacing and centres it on its neighbours.
        for node, value in zip(layer, placed, strict=True):
            x[node] = value + shift

    for _ in range(2 * sweeps):
        for layer in layers[1:] + layers[::-1]:
            pull(layer)

    xy = {node: (x[node], -level_height * level[node]) for node in graph.labels}
    # Spread the edges leaving (entering) a box over its bottom (top) side, in the order of their
    # other ends, so parallel edges stay apart.
    out_port: dict[tuple[str, str], float] = {}
    in_port: dict[tuple[str, str], float] = {}
    for node in graph.labels:
        # end 0: edges leaving `node`, ordered by their next point; end 1: edges entering it,
        # ordered by their previous point.
        for end, port, neighbour in ((0, out_port, 1), (1, in_port, -2)):
            mine = sorted(
                (e for e in graph.edges if e[end] == node), key=lambda e, n=neighbour: x[chains[e][n]]
            )
            spacing = 0.5 * slot(node) / max(len(mine) - 1, 1)
            for k, edge in enumerate(mine):
                port[edge] = (k - (len(mine) - 1) / 2) * spacing
    edge_paths = {}
    for edge, chain in chains.items():
        source, target = edge
        points = [(x[source] + out_port[edge], -level_height * level[source] - box_height / 2)]
        # Through a crossed level the edge runs vertically along the boxes' height, so its diagonal
        # parts never cut a box's corner.
        for dummy in chain[1:-1]:
            y = -level_height * dummy[3]
            points += [(x[dummy], y + box_height / 2), (x[dummy], y - box_height / 2)]
        points.append((x[target] + in_port[edge], -level_height * level[target] + box_height / 2))
        edge_paths[edge] = points
    levels = [[n for n in layer if not isinstance(n, tuple)] for layer in layers]
    return RuleGraphLayout(levels=levels, xy=xy, edge_paths=edge_paths)


RULE_FONT_PT = 7.0
"""Font size of the rule names in figure 1."""


def _text_width_in(text: str, size_pt: float = RULE_FONT_PT) -> float:
    """Width of `text` (its longest line) in inches, from the glyph outlines of the default font."""
    from matplotlib.textpath import TextPath

    return max(TextPath((0, 0), line, size=size_pt).get_extents().width for line in text.split("\n")) / 72


def fig1_pipeline(
    rulegraph_dot: str,
    stem: str | Path,
    synthetic: bool = False,
    title: str = "Figure 1. Workflow: the rules of ctnet-ht and their dependencies",
    omit: Iterable[str] = (),
) -> Figure:
    """Draw the workflow's rule graph top to bottom: one rounded box per rule, arrows for data flow.

    Uses no graphviz binary (not installed here): the DOT text is parsed by
    :func:`parse_rulegraph` and laid out by :func:`layout_rulegraph`, in inches, with each box as
    wide as its (wrapped) rule name, so no label runs into a neighbouring box.

    Args:
        rulegraph_dot: output of ``snakemake --rulegraph``.
        stem: output path without extension.
        synthetic: adds the synthetic-cohort note (the graph itself holds no data).
        title: metadata title.
        omit: rule names to leave out (see :func:`omit_rules`).

    Returns:
        The figure (already written).
    """
    graph = omit_rules(parse_rulegraph(rulegraph_dot), omit)
    labels = {node: wrap_rule_name(label) for node, label in graph.labels.items()}
    # Everything scales with the font; a graph wider than a page column pair gets a smaller font
    # (down to 4.5 pt) rather than boxes squeezed under their labels.
    font = RULE_FONT_PT
    while True:
        scale = font / RULE_FONT_PT
        pad_in, box_height, level_height = 0.12 * scale, 0.34 * scale, 0.62 * scale
        widths = {node: _text_width_in(label, font) + 2 * pad_in for node, label in labels.items()}
        layout = layout_rulegraph(
            graph,
            box_height=box_height,
            widths=widths,
            gap=0.14 * scale,
            level_height=level_height,
            virtual_width=0.1 * scale,
        )
        xs = [x for x, _ in layout.xy.values()] + [x for path in layout.edge_paths.values() for x, _ in path]
        left = min([x - widths[n] / 2 for n, (x, _) in layout.xy.items()] + xs, default=0) - 0.05
        right = max([x + widths[n] / 2 for n, (x, _) in layout.xy.items()] + xs, default=0) + 0.05
        if right - left + 0.2 <= DOUBLE_COLUMN_IN or font <= 4.5:
            break
        font -= 0.5
    n_levels = max(len(layout.levels), 1)
    bottom, top = -level_height * (n_levels - 1) - box_height / 2 - 0.05, box_height / 2 + 0.05
    with figure_style():
        fig = new_figure(right - left + 0.2, top - bottom + 0.45)
        ax = fig.subplots()
        # Rules nothing depends on (final results) get the warm fill.
        sinks = set(graph.labels) - {source for source, _ in graph.edges}
        for node, (x, y) in layout.xy.items():
            is_target = node in sinks and len(graph.labels) > 1
            box = FancyBboxPatch(
                (x - widths[node] / 2, y - box_height / 2),
                widths[node],
                box_height,
                boxstyle="round,pad=0.0,rounding_size=0.06",
                linewidth=0.9,
                edgecolor=OKABE_ITO["blue"],
                facecolor="#FBE3CF" if is_target else "#DCEBF5",
                zorder=2,
            )
            ax.add_patch(box)
            ax.text(x, y, labels[node], ha="center", va="center", fontsize=font, linespacing=1.0, zorder=3)
        for points in layout.edge_paths.values():
            arrow = FancyArrowPatch(
                path=MplPath(points),
                arrowstyle="-|>",
                mutation_scale=6,
                linewidth=0.7,
                color="0.4",
                zorder=1,
            )
            ax.add_patch(arrow)
        ax.set_xlim(left, right)
        ax.set_ylim(bottom, top)
        ax.set_aspect("equal")  # layout units are inches: text widths stay true
        ax.set_axis_off()
        save_figure(fig, stem, title, synthetic)
    return fig

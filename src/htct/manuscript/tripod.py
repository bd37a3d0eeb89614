"""The TRIPOD+AI checklist filled from the run: each item with the output that addresses it, or why
it is for the authors (resources/tripod_ai.yaml holds the items; docs/manuscript.md)."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from htct.errors import HTCTInputError

ADDRESSED, AUTHORS, MISSING = "addressed", "for the authors", "missing"
REPORT = "results/manuscript/report.html"


@dataclass(frozen=True)
class Entry:
    """One checklist item and what of this run addresses it."""

    id: str
    part: str  # "main" or "abstract"
    section: str
    topic: str
    applies: str
    title: str
    status: str
    outputs: tuple[str, ...]
    missing: tuple[str, ...]
    anchor: str | None
    reason: str
    unverified: bool


# What the checklist says of its item texts (resources/tripod_ai.yaml says where each was read).
WORDING = (
    "Main items: short titles in this project's words. Abstract items: the statement's Table 3 condensed; "
    "an item marked (unverified) was not checked against it."
)


def load_items(path: Path) -> dict[str, Any]:
    """The items file; every item has either outputs or a reason for the authors."""
    items = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    for item in [*items["items"], *items["abstract_items"]]:
        if ("outputs" in item) == ("authors" in item):
            raise HTCTInputError(f"{path}: item {item['id']} needs exactly one of outputs: and authors:")
    return items


def fill(items: Mapping[str, Any], root: Path, reference: str) -> list[Entry]:
    """Each item with its status: addressed (its outputs exist), for the authors, or missing."""
    entries = []
    for part, key in (("main", "items"), ("abstract", "abstract_items")):
        for item in items[key]:
            outputs = tuple(path.format(reference=reference) for path in item.get("outputs", []))
            missing = tuple(path for path in outputs if not (Path(root) / path).is_file())
            if "authors" in item:
                status, reason = AUTHORS, item["authors"]
            else:
                status, reason = (
                    (MISSING if missing else ADDRESSED),
                    item.get("note", "").format(reference=reference),
                )
            entries.append(
                Entry(
                    id=str(item["id"]),
                    part=part,
                    section=item.get("section", "Abstract"),
                    topic=item.get("topic", ""),
                    applies=item.get("applies", ""),
                    title=item["title"],
                    status=status,
                    outputs=outputs,
                    missing=missing,
                    anchor=item.get("section_anchor") if status == ADDRESSED else None,
                    reason=reason,
                    unverified=bool(item.get("unverified", False)),
                )
            )
    return entries


def counts(entries: Sequence[Entry]) -> dict[str, int]:
    """Items addressed / for the authors / missing."""
    found = Counter(entry.status for entry in entries)
    return {status: found.get(status, 0) for status in (ADDRESSED, AUTHORS, MISSING)}


def check_complete(entries: Sequence[Entry]) -> None:
    """Stop with one line when an item the run should address has no output."""
    missing = [entry for entry in entries if entry.status == MISSING]
    if missing:
        details = "; ".join(
            f"item {entry.id} ({entry.title}): {', '.join(entry.missing)}" for entry in missing
        )
        raise HTCTInputError(
            f"TRIPOD+AI checklist: {len(missing)} item(s) the run should address have no output: {details}. "
            "Run the stage that makes it, or mark the item for the authors in resources/tripod_ai.yaml."
        )


def _where(entry: Entry, link) -> str:
    if entry.status != ADDRESSED:
        return entry.reason
    parts = []
    if entry.anchor is not None:
        parts.append(
            link(
                f"{REPORT}#{entry.anchor}" if entry.anchor else REPORT,
                "report" + (f", {entry.anchor}" if entry.anchor else ""),
            )
        )
    parts += [link(path, path) for path in entry.outputs if path != REPORT]
    text = "; ".join(parts)
    return f"{text}. {entry.reason}" if entry.reason else text


def markdown(entries: Sequence[Entry], source: str, synthetic: bool, abstract_source: str = "") -> str:
    """The checklist as Markdown, links relative to results/manuscript/; `abstract_source` says where the
    abstract items' wording was checked."""

    def link(path: str, text: str) -> str:
        return f"[{text}](../{path.removeprefix('results/')})"

    found = counts(entries)
    lines = ["# TRIPOD+AI checklist of this run", ""]
    if synthetic:
        lines += ["**Synthetic cohort**: the run's outputs are not the paper's findings.", ""]
    lines += [
        f"Items: {source}. Addressed by the run: {found[ADDRESSED]}; for the authors: {found[AUTHORS]}; "
        f"missing: {found[MISSING]}. {WORDING}",
        "",
    ]
    for part, heading in (("main", "Main checklist"), ("abstract", "TRIPOD+AI for Abstracts")):
        checked = (
            [f"Wording checked against {abstract_source}.", ""]
            if part == "abstract" and abstract_source
            else []
        )
        lines += [
            f"## {heading}",
            "",
            *checked,
            "| item | section | D/E | item (short title) | status | where / why |",
            "|---|---|---|---|---|---|",
        ]
        for e in (e for e in entries if e.part == part):
            title = e.title + (" (unverified)" if e.unverified else "")
            lines.append(f"| {e.id} | {e.section} | {e.applies} | {title} | {e.status} | {_where(e, link)} |")
        lines.append("")
    return "\n".join(lines)


def html_page(entries: Sequence[Entry], source: str, synthetic: bool, abstract_source: str = "") -> str:
    """The checklist as one HTML page for the Snakemake report (no script, nothing fetched)."""

    def link(path: str, text: str) -> str:
        return f'<a href="../{html.escape(path.removeprefix("results/"))}">{html.escape(text)}</a>'

    found = counts(entries)
    esc = html.escape
    body = ["<h1>TRIPOD+AI checklist of this run</h1>"]
    if synthetic:
        body.append(
            "<p class=\"notice\">Synthetic cohort: the run's outputs are not the paper's findings.</p>"
        )
    body.append(
        f"<p>Items: {esc(source)}. Addressed by the run: <b>{found[ADDRESSED]}</b>; for the authors: "
        f"<b>{found[AUTHORS]}</b>; missing: <b>{found[MISSING]}</b>. {esc(WORDING)}</p>"
    )
    for part, heading in (("main", "Main checklist"), ("abstract", "TRIPOD+AI for Abstracts")):
        checked = (
            f"<p>Wording checked against {esc(abstract_source)}.</p>"
            if part == "abstract" and abstract_source
            else ""
        )
        body.append(
            f"<h2>{heading}</h2>{checked}<table><thead><tr><th>item</th><th>section</th><th>D/E</th>"
            "<th>item (short title)</th><th>status</th><th>where / why</th></tr></thead><tbody>"
        )
        for e in (e for e in entries if e.part == part):
            where = _where(e, link) if e.status == ADDRESSED else esc(e.reason)
            title = esc(e.title) + (" <i>(unverified)</i>" if e.unverified else "")
            css = e.status.replace(" ", "-")
            body.append(
                f'<tr class="{css}"><td>{esc(e.id)}</td><td>{esc(e.section)}</td><td>{esc(e.applies)}</td>'
                f"<td>{title}</td><td>{esc(e.status)}</td><td>{where}</td></tr>"
            )
        body.append("</tbody></table>")
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse;font-size:.85em}"
        "th,td{border:1px solid #bbb;padding:.2em .4em;vertical-align:top}th{background:#f3f3f3}"
        "tr.addressed td:nth-child(5){color:#060}tr.for-the-authors td:nth-child(5){color:#555}"
        ".notice{border:2px solid #b00;padding:.5em;background:#fee;font-weight:bold}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>TRIPOD+AI checklist</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_checklist(
    items_file: Path, root: Path, reference: str, md: Path, html_path: Path, synthetic: bool
) -> dict[str, int]:
    """Fill the checklist from the run under `root`, write it as Markdown and HTML, return the counts.

    Raises:
        HTCTInputError: when an item that the run should address has no output.
    """
    items = load_items(items_file)
    entries = fill(items, root, reference)
    check_complete(entries)
    abstract_source = items.get("abstract_source", "")
    Path(md).write_text(markdown(entries, items["source"], synthetic, abstract_source), encoding="utf-8")
    Path(html_path).write_text(
        html_page(entries, items["source"], synthetic, abstract_source), encoding="utf-8"
    )
    return counts(entries)

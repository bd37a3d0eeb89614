"""The reproduction report and the TRIPOD+AI checklist (htct.manuscript; docs/manuscript.md).

The report's promise is that it holds no typed result: every number in its text is an element that
names the output file and the place in it, and these tests read each value back from that file with
their own reader (not the report's), so that a number typed into the template, a stale value or a
wrong selector fails.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml

from htct.errors import HTCTInputError
from htct.manuscript import report, sources, tripod
from htct.manuscript.values import Outputs

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "src" / "htct" / "manuscript" / "templates" / "report.html.j2"
MODELS = ["ctnet", "wozniak2023", "soundari2022"]  # tests/config/tiny.yaml uses the default models
RULE_NAMES = {
    m.group(1) for smk in (REPO / "rules").glob("*.smk") for m in re.finditer(r"rule (\w+):", smk.read_text())
}
VOID = {"meta", "br", "hr", "img", "link", "input", "col"}
# Digits a template may hold that are not results: the confidence level, and the names of the
# paper's tables ("the paper's Table 2").
ALLOWED_LITERALS = re.compile(r"95% (CI|confidence interval)|(?<=[Tt]he paper's )Table \d\b")


def literal_digits(template: str) -> list[str]:
    """Digits of a Jinja2 template outside its style sheet, comments and allowed conventions."""
    text = re.sub(r"<style>.*?</style>", "", template, flags=re.S)
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    text = re.sub(r"</?h[1-6]\b|charset=\"utf-8\"", "", text)  # element names, not text
    text = ALLOWED_LITERALS.sub("", text)
    return [match.group(0) for match in re.finditer(r".{0,20}\d.{0,20}", text)]


class Page(HTMLParser):
    """Every text node of a page with the open elements around it (tag, attributes)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.texts: list[tuple[str, list[tuple[str, dict[str, str]]]]] = []
        self.values: list[dict[str, str]] = []  # the attributes of each number element, with its text
        self.tables: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attributes = {key: value or "" for key, value in attrs}
        if tag in VOID:
            return
        self.stack.append((tag, attributes))
        if tag == "a" and attributes.get("class") in ("num", "txt"):
            self.values.append(attributes | {"shown": ""})

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.stack and self.stack[-1][0] == tag, f"unbalanced </{tag}> in {self.stack[-3:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.texts.append((data, list(self.stack)))
        if self.stack and self.stack[-1][0] == "a" and self.stack[-1][1].get("class") in ("num", "txt"):
            self.values[-1]["shown"] += data


def parse(html_text: str) -> Page:
    page = Page()
    page.feed(html_text)
    page.close()
    return page


def reread(root: Path, attributes: dict[str, str]):
    """The value that a number element names, read from its file by this test's own means."""
    path = root / attributes["data-file"]
    kind, column = attributes["data-kind"], attributes["data-column"]
    if kind == "json":
        node = json.loads(path.read_text())
        for key in column.split("."):
            node = node[int(key)] if isinstance(node, list) else node[key]
        return node
    table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    table["_row"] = [str(i) for i in range(len(table))]
    for key, wanted in json.loads(attributes["data-where"]).items():
        if key.endswith("^"):  # a kind of reason: the text itself or the text and its details
            text = table[key[:-1]]
            table = table[(text == wanted) | text.str.startswith(wanted + " ")]
        else:
            table = table[table[key] == wanted]
    if kind == "count":
        return len(table)
    assert len(table) == 1, f"{attributes['data-file']} {attributes['data-where']}: {len(table)} rows"
    cell = table.iloc[0][column]
    if kind == "text":
        return cell
    return float("nan") if cell in ("", "NA", "nan", "NaN") else float(cell)


def shown(value, attributes: dict[str, str]) -> str:
    """How the report must print `value` given the element's scale and decimals."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    number = float(value) * float(attributes["data-scale"])
    decimals = int(attributes["data-decimals"])
    if not math.isfinite(number):
        return "n/a"
    return f"{number:.{-decimals}g}" if decimals < 0 else f"{number:.{decimals}f}"


def digits_outside_values(page: Page, root: Path) -> list[str]:
    """Text with digits that is not a value element, an existing output path or a column/key name."""
    bad = []
    for text, stack in page.texts:
        if not re.search(r"\d", text):
            continue
        classes = [(tag, attributes.get("class", "")) for tag, attributes in stack]
        if any(tag == "a" and css in ("num", "txt") for tag, css in classes):
            continue
        if ("code", "path") in classes and (root / text.strip()).is_file():
            continue
        if ("th", "col") in classes:
            table = next(attributes for tag, attributes in reversed(stack) if tag == "table")
            if (
                text.strip()
                in pd.read_csv(root / table["data-file"], sep=None, engine="python", nrows=0).columns
            ):
                continue
        if ("code", "rule") in classes and text.strip() in RULE_NAMES:
            continue
        if ("code", "key") in classes:
            node = json.loads((root / sources.PREPROCESS).read_text())
            try:
                for key in text.strip().split("."):
                    node = node[int(key)] if isinstance(node, list) else node[key]
                continue
            except (KeyError, IndexError, ValueError):
                pass
        if ("style", "") in classes or ("title", "") in classes and "synthetic" in text:
            continue
        if ALLOWED_LITERALS.search(text) and not re.search(r"\d", ALLOWED_LITERALS.sub("", text)):
            continue
        bad.append(text.strip())
    return bad


def test_the_template_holds_no_literal_number():
    assert literal_digits(TEMPLATE.read_text()) == []
    # the scan finds a typed result, and lets the confidence level and comments pass
    assert literal_digits("<p>CTNet reaches AUC 0.775</p>") != []
    assert literal_digits("<p>{{ x | n }} (95% CI)</p>{# Table 2 #}<style>a{margin:1em}</style>") == []


# A result of a run typed into README.md or docs/*.md: a model's AUC, a correlation, a claim's p-value
# with its verdict, or a table of metrics. Such numbers belong to the run's report; a benchmark
# record may keep them when the same paragraph names its command, its CPU and its date.
DOC_NUMBER = r"(?:0?\.\d{2,}|\b\d{2}\.\d{1,2}\b)"
TYPED_RESULTS = (
    re.compile(
        rf"\b(?:test|validation|val|out-of-fold|held-out)\b[^.;:|]{{0,25}}\bAUCs?\b[^.;|]{{0,40}}?{DOC_NUMBER}",
        re.I,
    ),
    # "AUC of `p_true` 0.86" is the synthetic truth's, a property of the generator, not a run's result
    re.compile(
        rf"\bAUCs?\b[^.;|]{{0,15}}\b(?:of|is|was|reaches|reached)\b(?!\s*`p_|\s*[~≈])[^.;|]{{0,10}}{DOC_NUMBER}"
    ),
    re.compile(
        rf"\bCTNet\b[^.;|]{{0,30}}\b(?:reaches|reached|gets|got|scores|scored|has|had)\b[^.;|]{{0,30}}{DOC_NUMBER}"
    ),
    re.compile(rf"\bSpearman\b[^.;|]{{0,30}}{DOC_NUMBER}"),
    re.compile(r"\bp\s*[=<]\s*0?\.\d+\)?[^.]{0,30}\b(?:holds|undecided|does not hold)\b", re.I),
)
METRIC_HEADER = re.compile(r"\b(?:AUC|sensitivity|specificity|F1|Brier|log loss|Spearman|enrichment)\b", re.I)
BENCHMARK_RECORD = (
    re.compile(r"\b20\d\d-\d\d-\d\d\b"),  # the date
    re.compile(r"AVX-512|AVX2"),  # the CPU's instruction set (training bits differ between them)
    re.compile(r"`(?:\.venv/bin/)?(?:python|snakemake|pytest|make|htct)\b[^`]*`|`[\w/]*bench_\w+\.py\b"),
)


def doc_blocks(text: str) -> list[str]:
    """Paragraphs of a Markdown page; a table belongs to the paragraph that introduces it."""
    blocks: list[str] = []
    for part in re.split(r"\n\s*\n", text):
        if part.lstrip().startswith("|") and blocks:
            blocks[-1] += "\n" + part
        else:
            blocks.append(part)
    return blocks


def typed_results(text: str) -> list[str]:
    """The typed results of a run in a Markdown page that no benchmark record (command, CPU, date)
    accounts for."""
    found = []
    for block in doc_blocks(text):
        hits = [m.group(0) for pattern in TYPED_RESULTS for m in pattern.finditer(block)]
        rows = [line for line in block.splitlines() if line.lstrip().startswith("|")]
        if len(rows) > 2 and METRIC_HEADER.search(rows[0]):
            hits += [row for row in rows[2:] if re.search(rf"\|\s*\**{DOC_NUMBER}", row)]
        if hits and not all(pattern.search(block) for pattern in BENCHMARK_RECORD):
            found.append(" ".join(hits[0].split())[:120])
    return found


def test_readme_and_docs_carry_no_typed_result_of_a_run():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert len(pages) > 5
    found = {page.name: typed_results(page.read_text(encoding="utf-8")) for page in pages}
    assert {name: hits for name, hits in found.items() if hits} == {}
    # the scan finds typed results in prose and in tables, and lets a benchmark record, the synthetic
    # truth's AUC and design facts pass
    assert typed_results("CTNet reaches a test AUC of 0.775 (0.653–0.896).")
    assert typed_results("Intro:\n\n| model | test AUC |\n|---|---|\n| CTNet | **0.775** |")
    assert typed_results("the clinical variables add -0.007 (p = 0.68): **undecided**")
    assert typed_results("infarct counterfactual Spearman 0.92")
    benchmark = "test AUC 0.816 (`python benchmarks/bench_discrimination.py`, 2026-12-01, AMD EPYC, AVX2)"
    assert typed_results(benchmark) == []
    assert typed_results(benchmark.replace(", AVX2", "")) != []
    assert typed_results("AUC of `p_true` 0.871; 474 patients, 9:1 split, alpha 0.05, margin 0.05 AUC") == []


@pytest.mark.slow
def test_every_number_of_the_report_traces_to_its_file(tiny_run):
    text = (tiny_run / "results/manuscript/report.html").read_text()
    page = parse(text)
    numbers = [v for v in page.values if v["data-kind"] != "text"]
    assert len(numbers) > 100, len(numbers)
    for attributes in page.values:
        value = reread(tiny_run, attributes)
        assert attributes["shown"] == shown(value, attributes), attributes
        assert attributes["href"] == "../" + attributes["data-file"].removeprefix("results/")
        assert attributes["data-rule"] and attributes["data-rule"] != "?", attributes
    assert digits_outside_values(page, tiny_run) == []
    # the rules named are the DAG's: e.g. the test metrics come from rule evaluate, the claims from
    # paper_comparison, table 1 from table1
    rules = {v["data-file"]: v["data-rule"] for v in page.values}
    assert rules["results/tables/table2.csv"] == "evaluate"
    assert rules["results/paper/claims.tsv"] == "paper_comparison"
    assert rules["results/tables/table1.csv"] == "table1"
    # tables 1-3 in the paper's layout and the clinical models' tables are read cell by cell too
    assert all(rules[file] == "paper_tables" for file in sources.LAYOUTS.values())
    assert (
        rules[sources.IMAGE_CLINICAL] == "image_clinical"
        and rules[sources.FUSION_SELECTION] == "fuse_clinical"
    )
    # the QC exclusions: one line per kind of reason, each count read back by its kind
    kinds = [v for v in page.values if v["data-file"] == sources.SERIES and "reason^" in v["data-where"]]
    assert kinds and len(kinds) == len({v["data-where"] for v in kinds})
    # every section is there, and the synthetic run says so above all
    for anchor in (
        "cohort",
        "conversion",
        "preprocessing",
        "split",
        "models",
        "statistics",
        "baseline",
        "clinicians",
        "mrmc",
        "compared",
        "clinical",
        "paper",
        "claims",
        "audit",
        "repeats",
        "counterfactuals",
        "attribution",
        "limitations",
    ):
        assert f'id="{anchor}"' in text, anchor
    assert 'class="notice"' in text
    assert (tiny_run / "results/manuscript/report.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.slow
def test_a_changed_value_in_a_file_is_caught(tiny_run):
    page = parse((tiny_run / "results/manuscript/report.html").read_text())
    attributes = next(
        v
        for v in page.values
        if v["data-file"] == sources.NUMBERS
        and v["data-kind"] == "json"
        and v["data-column"] == "cohort.patients"
    )
    assert attributes["shown"] == shown(reread(tiny_run, attributes), attributes)
    assert attributes["shown"] != shown(reread(tiny_run, attributes) + 1, attributes)


@pytest.mark.slow
def test_the_same_inputs_give_the_same_text(tiny_run):
    written = (tiny_run / "results/manuscript/report.html").read_text()
    out = Outputs(tiny_run, sources.rules_for(MODELS))
    context = report.collect(out, MODELS, synthetic=True)
    first = report.render_html(context)
    second = report.render_html(report.collect(Outputs(tiny_run, sources.rules_for(MODELS)), MODELS, True))
    assert first == second
    # the rule's page differs only by the rules, which the rule takes from the DAG
    strip = re.compile(r' data-rule="[^"]*"| title="[^"]*"|<code class="rule">\w+</code>')
    assert strip.sub("", first) == strip.sub("", written)


@pytest.mark.slow
def test_optional_stages_render_as_not_run(tiny_run, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(
        tiny_run / "results",
        root / "results",
        ignore=shutil.ignore_patterns("*.npy", "*.nii.gz", "nifti", "dicom", "*.pt"),
    )
    optional_files = (sources.COUNTERFACTUALS, sources.ATTRIBUTION, sources.MRMC, sources.REPEATS)
    for optional in (*optional_files, sources.IMAGE_CLINICAL, sources.LAYOUTS["compared"]):
        (root / optional).unlink()
    numbers = json.loads((root / sources.NUMBERS).read_text())
    numbers["readers"] = {}
    (root / sources.NUMBERS).write_text(json.dumps(numbers))
    text = report.write_report(root, MODELS, True, root / "results/manuscript/report.html")
    for anchor in ("repeats", "counterfactuals", "attribution", "mrmc", "clinical", "compared"):
        section = text.split(f'id="{anchor}"', 1)[1].split("<h3", 1)[0]
        assert "Not run" in section, anchor
    assert "Reader study not run" in text


@pytest.mark.slow
def test_tripod_checklist_of_the_tiny_run(tiny_run):
    md = (tiny_run / "results/manuscript/tripod_ai.md").read_text()
    rows = [line.split(" | ") for line in md.splitlines() if re.match(r"\| (A?\d+[a-g]?) \|", line)]
    ids = [row[0].strip("| ") for row in rows]
    main = [i for i in ids if not i.startswith("A")]
    assert len(main) == 52 and len(set(main)) == 52
    assert {re.match(r"\d+", i).group(0) for i in main} == {str(n) for n in range(1, 28)}
    assert [i for i in ids if i.startswith("A")] == [f"A{n}" for n in range(1, 14)]
    statuses = [row[4] for row in rows]
    assert set(statuses) <= {"addressed", "for the authors"}
    for item in ("17", "18a", "18d", "19"):  # ethics, funding, registration, PPI
        assert statuses[ids.index(item)] == "for the authors"
    for item in ("20b", "23a", "12a"):
        assert statuses[ids.index(item)] == "addressed"
    found = f"Addressed by the run: {statuses.count('addressed')}; for the authors: {statuses.count('for the authors')}"
    assert found + "; missing: 0" in md
    html_text = (tiny_run / "results/manuscript/tripod_ai.html").read_text()
    for path in re.findall(r'href="\.\./([^"#]+)', html_text):
        assert (tiny_run / "results" / path).is_file(), path


def test_tripod_stops_when_an_item_the_run_should_address_has_no_output(tmp_path):
    items = yaml.safe_load((REPO / "resources/tripod_ai.yaml").read_text())
    (tmp_path / "results/qc").mkdir(parents=True)
    (tmp_path / "results/qc/patients.tsv").write_text("patient_id\n")
    with pytest.raises(HTCTInputError, match=r"item 6b .*results/qc/series.tsv"):
        tripod.check_complete(tripod.fill(items, tmp_path, "ctnet"))
    bad = {"source": "x", "items": [{"id": "1", "title": "t"}], "abstract_items": []}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(HTCTInputError, match="exactly one of outputs: and authors:"):
        tripod.load_items(tmp_path / "bad.yaml")


def test_the_items_file_lists_every_tripod_ai_item():
    items = yaml.safe_load((REPO / "resources/tripod_ai.yaml").read_text())
    ids = [item["id"] for item in items["items"]]
    assert len(ids) == 52 and ids[0] == "1" and ids[-1] == "27c"
    for item in items["items"] + items["abstract_items"]:
        assert ("outputs" in item) != ("authors" in item), item["id"]
    # TRIPOD+AI for Abstracts: the statement's Table 3, 13 items, each checked against it; A7 and A10
    # (model building, the final model's predictors) concern development only
    abstract = items["abstract_items"]
    assert [item["id"] for item in abstract] == [f"A{n}" for n in range(1, 14)]
    assert all(item["verified"] == items["abstract_source"] and "unverified" not in item for item in abstract)
    assert "Table 3" in items["abstract_source"] and "PMC11019967" in items["abstract_source"]
    assert [item["id"] for item in abstract if item["applies"] == "D"] == ["A7", "A10"]
    assert abstract[12]["section"] == "Registration" and "authors" in abstract[12]


def test_qc_exclusions_are_grouped_by_kind_of_reason(tmp_path):
    assert sources.reason_kind("scout/localizer (ImageType LOCALIZER)") == "scout/localizer"
    assert sources.reason_kind("gantry tilt 18.5 deg (refused)") == "gantry tilt"
    assert sources.reason_kind("too few slices (n 12 < min_slices 20)") == "too few slices"
    assert sources.reason_kind("not a DICOM file") == "not a DICOM file"
    (tmp_path / "results/qc").mkdir(parents=True)
    reasons = [
        *["scout/localizer (ImageType LOCALIZER)"] * 3,
        "duplicate series in study (kept series 0b353460859f: its 5 mm slices are closer to 5 mm)",
        "duplicate series in study (kept series 11cce98aada8: its 5 mm slices are closer to 5 mm)",
        "not a DICOM file",
    ]
    rows = [("a1", "kept", "")] + [(f"x{i}", "excluded", reason) for i, reason in enumerate(reasons)]
    (tmp_path / sources.SERIES).write_text(
        "series_key\tstatus\treason\n" + "".join(f"{k}\t{s}\t{r}\n" for k, s, r in rows)
    )
    out = Outputs(tmp_path, {sources.SERIES: "convert_dicom"})
    grouped = sources.exclusion_kinds(out)
    assert [(kind, count.value) for kind, count in grouped] == [
        ("scout/localizer", 3),
        ("duplicate series in study", 2),
        ("not a DICOM file", 1),
    ]
    # each count reads back from the QC table by its selector, as the traceability test reads it
    for _, count in grouped:
        element = parse(str(report.number_element(count, "results/manuscript/report.html"))).values[0]
        assert int(element["shown"]) == reread(tmp_path, element) == count.value


def test_values_name_their_file_and_place_and_read_back(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results/m.tsv").write_text(
        "rater\tmetric\tvalue\nCTNet\tauc\t0.8125\nClinician 1\tauc\tNA\n"
    )
    (tmp_path / "results/n.json").write_text(json.dumps({"cohort": {"patients": 24, "notice": "synthetic"}}))
    rules = {"results/m.tsv": "evaluate", "results/n.json": "numbers"}
    out = Outputs(tmp_path, rules)
    auc = out.cell("results/m.tsv", "value", scale=100, decimals=1, rater="CTNet", metric="auc")
    assert (auc.value, auc.text, auc.rule) == (0.8125, "81.2", "evaluate")
    assert out.cell("results/m.tsv", "value", rater="Clinician 1").text == "n/a"
    assert out.count("results/m.tsv", metric="auc").value == 2
    assert out.json("results/n.json", "cohort.patients").text == "24"
    with pytest.raises(KeyError, match="picks 2 rows"):
        out.cell("results/m.tsv", "value", metric="auc")
    assert not out.exists("results/other.tsv")  # not made by this run's rules
    element = parse(str(report.number_element(auc, "results/manuscript/report.html"))).values[0]
    assert element["href"] == "../m.tsv" and element["data-rule"] == "evaluate"
    assert element["shown"] == shown(reread(tmp_path, element), element) == "81.2"

"""Tests of htct.paper: the values file, the audit rules, the comparison and the claims' verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_claims import _test_scans  # constructed raters, shared with the claims' tests

from htct.errors import HTCTInputError
from htct.paper import audit_markdown, audit_values, comparison_table, load_paper_values, reproduced_values
from htct.paper.audit import (
    COHORT_SIZES,
    CONSISTENT,
    INCONSISTENT,
    NOT_COMPUTABLE,
    TEST_SIZES,
    check_confusion_rows,
    check_counts,
    check_f1,
    check_intervals,
    check_prevalence,
    check_reachable,
    confusion_matrices,
    implied_prevalence,
    numerators,
    ppv_from_f1,
    printed_share,
    smallest_denominator,
)
from htct.paper.claims import (
    DOES_NOT_HOLD,
    HOLDS,
    UNDECIDED,
    combined_verdict,
    paper_claims,
    verdict,
)
from htct.paper.values import paper_values_from_dict

VALUES_FILE = Path(__file__).resolve().parents[1] / "resources" / "paper" / "zhang2026.yaml"
PAPER = {"citation": "constructed", "text_source": "tests"}


def entry(entry_id: str, value: float | None, unit: str = "percent", decimals: int = 2, **extra) -> dict:
    status = extra.pop("status", "read" if value is not None else "missing")
    section = extra.pop("section", "Text")
    return {
        "id": entry_id,
        "section": section,
        "quantity": entry_id,
        "value": value,
        "decimals": decimals,
        "unit": unit,
        "status": status,
        **({"source": "constructed"} if value is not None else {}),
        **extra,
    }


def values_of(*entries: dict):
    return paper_values_from_dict({"paper": PAPER, "entries": list(entries)}, "constructed")


def rater_row(prefix: str, accuracy: float, sensitivity: float, specificity: float) -> list[dict]:
    """A rater's printed accuracy, sensitivity and specificity (ids ``<prefix>.<metric>``)."""
    return [
        entry(f"{prefix}.{metric}", value, denominator="test_scans")
        for metric, value in (
            ("accuracy", accuracy),
            ("sensitivity", sensitivity),
            ("specificity", specificity),
        )
    ]


def results(findings) -> dict[str, str]:
    return {f.subject: f.result for f in findings}


# --- the values file -----------------------------------------------------------------------------


def test_the_paper_values_file_is_valid_and_names_its_sources() -> None:
    values = load_paper_values(VALUES_FILE)
    entries = values.entries
    assert entries["id"].is_unique
    present = entries[entries["status"] != "missing"]
    assert present["value"].notna().all() and present["source"].notna().all()
    assert entries.loc[entries["status"] == "missing", "value"].isna().all()
    # the abstract's numbers, read in the text (tests/test_paper_values.py checks every printed cell)
    read = entries[entries["status"] == "read"].set_index("id")["value"]
    assert read[["text.patients", "text.scans", "text.ctnet.f1", "text.ctnet.auc"]].tolist() == [
        474,
        613,
        78.94,
        0.842,
    ]
    assert set(entries["status"]) == {"read", "inferred", "missing"}
    # every table cell has an entry: Table 2 (10 rows x 6), Table 3 (3 x 4)
    assert (entries["section"] == "Table 2").sum() == 60
    assert entries["id"].str.match(r"table3\.(ctnet|wozniak2023|soundari2022)\.").sum() == 12
    assert (entries["section"] == "Table 1").sum() == 24
    # the audit's fixed ids exist
    for entry_id in (*TEST_SIZES, *COHORT_SIZES):
        assert values.value(entry_id) is not None, entry_id


def test_bad_values_files_give_one_line_errors(tmp_path) -> None:
    good = entry("text.patients", 474, unit="count", decimals=0)
    with pytest.raises(HTCTInputError, match="appears twice"):
        values_of(good, good)
    with pytest.raises(HTCTInputError, match="status missing but a value"):
        values_of({**good, "status": "missing"})
    with pytest.raises(HTCTInputError, match="needs a value and its source"):
        values_of({**good, "value": None, "status": "read"})
    with pytest.raises(HTCTInputError, match="needs its argument in 'inference'"):
        values_of({**good, "status": "inferred"})
    with pytest.raises(HTCTInputError, match="placed_among must list existing ids"):
        values_of({**good, "placed_among": ["text.patients", "text.absent"]})
    with pytest.raises(HTCTInputError, match="entries/0/status"):
        values_of({**good, "status": "verified"})
    with pytest.raises(HTCTInputError, match="entries/0/unit"):
        values_of({**good, "unit": "kilograms"})
    with pytest.raises(HTCTInputError, match="not found"):
        load_paper_values(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("paper: [unclosed\n")
    with pytest.raises(HTCTInputError, match="not valid YAML"):
        load_paper_values(tmp_path / "bad.yaml")


# --- audit rules on constructed inputs -------------------------------------------------------------


def test_printed_numbers_stand_for_their_rounding_interval() -> None:
    low, high = printed_share(74.52, 2, "percent")
    assert low == pytest.approx(0.74515) and high == pytest.approx(0.74525)
    assert numerators(low, high, 61) == []
    assert numerators(*printed_share(50.0, 2, "percent"), 60) == [30]
    assert smallest_denominator(low, high) == (157, 117)
    assert smallest_denominator(*printed_share(0.61, 2, "fraction")) == (18, 11)


def test_reachable_as_k_over_n() -> None:
    sizes = (
        entry("text.test_scans", 61, unit="count", decimals=0),
        entry("text.patients", 474, unit="count", decimals=0),
    )
    values = values_of(
        *sizes,
        entry("a.accuracy", 74.52, denominator="test_scans"),
        entry("b.accuracy", 73.77, denominator="test_scans"),
        entry("t1.male", 74.05, denominator="patients", section="Table 1"),
        entry("c.sensitivity", 71.55, denominator="test_positive_scans"),
        entry("d.sensitivity", 70.00, denominator="test_positive_scans"),
        entry("e.auc", 0.5, unit="fraction", decimals=1, denominator="auc"),
        entry("f.f1", 100.0, denominator="f1"),
    )
    found = {f.inputs[0]: f for f in check_reachable(values)}
    assert found["a.accuracy"].result == INCONSISTENT
    assert "45/61 = 73.77%, 46/61 = 75.41%" in found["a.accuracy"].detail
    assert found["b.accuracy"].result == CONSISTENT and "45/61" in found["b.accuracy"].detail
    assert found["t1.male"].result == CONSISTENT and "351/474" in found["t1.male"].detail
    assert found["c.sensitivity"].result == INCONSISTENT  # smallest denominator is 116 > 61
    assert found["d.sensitivity"].result == CONSISTENT and "{10, 20, 30" in found["d.sensitivity"].detail
    assert found["e.auc"].result == CONSISTENT and found["f.f1"].result == CONSISTENT


def test_confusion_matrices_and_one_matrix_per_row() -> None:
    shares = {
        m: printed_share(v, 2, "percent")
        for m, v in (("accuracy", 75), ("sensitivity", 80), ("specificity", 70))
    }
    assert (8, 2, 3, 7) in confusion_matrices(shares, 20)
    assert all(tp + fn + fp + tn == 20 for tp, fn, fp, tn in confusion_matrices(shares, 20))
    size = entry("text.test_scans", 20, unit="count", decimals=0)
    row = rater_row("r", 75, 80, 70)
    impossible = rater_row("x", 90, 50, 50)
    found = {f.subject.split(":")[0]: f for f in check_confusion_rows(values_of(size, *row, *impossible))}
    assert found["r"].result == CONSISTENT and "TP 8 FN 2 FP 3 TN 7" in found["r"].detail
    assert found["x"].result == INCONSISTENT and "no test size" in found["x"].detail


def test_implied_prevalence_formulas() -> None:
    exact = lambda x: (x, x)  # noqa: E731
    assert implied_prevalence(exact(0.75), exact(0.8), exact(0.7)) == pytest.approx((0.5, 0.5))
    # TP 8 FN 2 FP 3 TN 7: PPV 8/11, F1 16/21
    assert ppv_from_f1(exact(16 / 21), exact(0.8)) == pytest.approx((8 / 11, 8 / 11))
    assert implied_prevalence(exact(0.75), exact(0.8), ppv=exact(8 / 11)) == pytest.approx((0.5, 0.5))
    assert np.isnan(implied_prevalence(exact(0.75), exact(0.8))[0])


def test_implied_prevalence_against_the_cohort() -> None:
    cohort = (
        entry("text.patients", 400, unit="count", decimals=0),
        entry("text.patients_ht", 200, unit="count", decimals=0),
        entry("text.test_scans", 61, unit="count", decimals=0),
    )
    plausible = rater_row("p", 75, 80, 70)
    # prevalence (acc - spec) / (sens - spec) = (0.88 - 0.7) / 0.2 = 0.9: 55 of 61 test scans with HT
    implausible = rater_row("q", 88, 90, 70)
    found = {
        f.subject.split(":")[0]: f for f in check_prevalence(values_of(*cohort, *plausible, *implausible))
    }
    assert found["p"].result == CONSISTENT and "implied HT share 49.9–50.1%" in found["p"].detail
    assert found["q"].result == INCONSISTENT and "89.9–90.1%" in found["q"].detail


def test_f1_against_sensitivity_ppv_and_macro_f1() -> None:
    rows = [
        entry("a.sensitivity", 80.0, denominator="test_positive_scans"),
        entry("a.ppv", 72.73, denominator="test_positive_calls"),
        entry("a.f1", 76.19, denominator="f1"),
        entry("b.sensitivity", 80.0, denominator="test_positive_scans"),
        entry("b.ppv", 72.73, denominator="test_positive_calls"),
        entry("b.f1", 90.00, denominator="f1"),
        entry("c.f1", 78.94, denominator="f1"),
    ]
    # the paper's all-HT row: 64.52 / 100 / 0 / macro-F1 39.22 (and a wrong macro-F1)
    for row, macro in (("d", 39.22), ("e", 50.0)):
        rows += [
            entry(f"{row}.accuracy", 64.52, denominator="test_scans"),
            entry(f"{row}.sensitivity", 100.0, denominator="test_positive_scans"),
            entry(f"{row}.specificity", 0.0, denominator="test_negative_scans"),
            entry(f"{row}.macro_f1", macro, denominator="macro_f1"),
        ]
    found = results(check_f1(values_of(*rows)))
    assert (
        found["a: F1"] == CONSISTENT and found["b: F1"] == INCONSISTENT and found["c: F1"] == NOT_COMPUTABLE
    )
    assert found["d: macro-F1"] == CONSISTENT and found["e: macro-F1"] == INCONSISTENT


def test_intervals_on_the_estimates_scale_and_containing_it() -> None:
    found = {
        f.inputs[0]: f
        for f in check_intervals(
            values_of(
                entry("auc", 0.842, unit="fraction", decimals=3, ci=[75.8, 92.1], ci_unit="percent"),
                entry("ok", 71.55, ci=[60.6, 85.0]),
                entry("outside", 71.55, ci=[72.0, 85.0]),
            )
        )
    }
    assert found["auc"].result == INCONSISTENT and "printed in percent" in found["auc"].detail
    assert found["ok"].result == CONSISTENT
    assert found["outside"].result == INCONSISTENT and "outside" in found["outside"].detail


def test_count_checks() -> None:
    count = lambda i, v: entry(i, v, unit="count", decimals=0)  # noqa: E731
    medication = [
        entry(
            f"t1.{m}",
            v,
            section="Table 1",
            column="Total",
            compare={"kind": "table1", "group": "total", "variable": "medication", "level": m},
        )
        for m, v in (("a", 66.24), ("b", 2.53), ("c", 21.31), ("d", 8.65), ("e", 1.27))
    ]
    values = values_of(
        count("text.patients", 474),
        count("text.patients_ht", 231),
        count("text.patients_non_ht", 243),
        count("text.patients_ht_elsewhere", 243),
        count("text.patients_non_ht_elsewhere", 231),
        count("text.train_patients", 437),
        count("text.test_patients", 61),
        *medication,
    )
    found = {f.subject: f for f in check_counts(values)}
    assert found["HT + non-HT patients = cohort"].result == CONSISTENT
    assert found["the HT / non-HT split printed the same way throughout"].result == INCONSISTENT
    patients = found["training + test patients = cohort (a patient in one part only)"]
    assert patients.result == INCONSISTENT and "24 patients more than the cohort" in patients.detail
    assert found["one scan count"].result == NOT_COMPUTABLE
    assert found["Table 1 Total: medication shares add up to 100%"].result == CONSISTENT
    medication[0]["value"] = 60.0
    found = {f.subject: f for f in check_counts(values_of(count("text.patients", 474), *medication))}
    assert found["Table 1 Total: medication shares add up to 100%"].result == INCONSISTENT


def test_audit_table_and_markdown_mark_inferred_inputs() -> None:
    values = values_of(
        entry("text.test_scans", 61, unit="count", decimals=0, status="inferred", inference="constructed"),
        entry("x.accuracy", 74.52, denominator="test_scans"),
        entry("y", 0.842, unit="fraction", decimals=3, ci=[75.8, 92.1], ci_unit="percent"),
    )
    findings = audit_values(values)
    by_subject = findings.set_index("subject")
    assert by_subject.loc["x.accuracy 74.52%", "evidence"] == "uses inferred"
    assert by_subject.loc["y 0.842", "evidence"] == "read"
    text = audit_markdown(findings, values)
    assert "**2 inconsistent**" in text and "## Inconsistent" in text


def test_audit_of_the_paper_finds_its_known_inconsistencies() -> None:
    findings = audit_values(load_paper_values(VALUES_FILE)).set_index(["check", "subject"])["result"]
    assert findings[("reachable as k/n", "CTNet test accuracy 74.52%")] == INCONSISTENT  # not k/61
    assert findings[("interval", "CTNet test AUC (Abstract) 0.842")] == INCONSISTENT  # interval in percent
    assert (
        findings[("counts", "training + test patients = cohort (a patient in one part only)")] == INCONSISTENT
    )
    assert findings[("reachable as k/n", "Table 1 Male, n (%) (total) 74.05%")] == CONSISTENT  # 351/474


# --- comparison -------------------------------------------------------------------------------------


def test_reproduced_values_come_from_the_tidy_outputs_in_the_papers_units() -> None:
    values = values_of(
        entry(
            "m.acc",
            74.52,
            ci=[63.9, 83.2],
            ci_decimals=1,
            compare={"kind": "metric", "rater": "ctnet", "metric": "accuracy"},
        ),
        entry(
            "m.auc",
            0.842,
            unit="fraction",
            decimals=3,
            compare={"kind": "metric", "rater": "ctnet", "metric": "auc"},
        ),
        entry(
            "r.min",
            28,
            decimals=0,
            approximate=True,
            compare={"kind": "readers", "metric": "sensitivity", "stat": "min"},
        ),
        entry(
            "c.train",
            437,
            unit="count",
            decimals=0,
            compare={"kind": "count", "keys": ["split.train.patients", "split.val.patients"]},
        ),
        entry(
            "t.age",
            62.45,
            unit="years",
            sd=11.85,
            compare={"kind": "table1", "group": "total", "variable": "age"},
        ),
        entry("x.missing", None, compare={"kind": "metric", "rater": "Clinician 9", "metric": "accuracy"}),
    )
    metrics = pd.DataFrame(
        {
            "rater": ["ctnet", "ctnet"],
            "metric": ["accuracy", "auc"],
            "value": [0.5, 0.8],
            "low": [0.4, 0.7],
            "high": [0.6, 0.9],
        }
    )
    numbers = {
        "readers": {"sensitivity": {"min": 0.25}},
        "split": {"train": {"patients": 30}, "val": {"patients": 6}},
    }
    table1 = pd.DataFrame(
        {"group": ["total"], "variable": ["age"], "level": [""], "n": [10], "value": [60.0], "sd": [9.0]}
    )
    oracle = pd.DataFrame(
        {
            "rater": ["oracle"] * 2,
            "metric": ["accuracy", "auc"],
            "value": [0.7, 0.9],
            "low": [0.6, 0.8],
            "high": [0.8, 1.0],
        }
    )
    reproduced = reproduced_values(values, metrics, numbers, table1, oracle).set_index("id")
    assert reproduced.loc[
        "m.acc", ["reproduced", "reproduced_low", "reproduced_high"]
    ].tolist() == pytest.approx([50, 40, 60])
    assert reproduced.loc["m.acc", "oracle"] == pytest.approx(70)
    assert reproduced.loc["m.auc", "reproduced"] == pytest.approx(0.8)
    assert reproduced.loc["r.min", "reproduced"] == pytest.approx(25)
    assert reproduced.loc["c.train", "reproduced"] == 36
    assert reproduced.loc["t.age", ["reproduced", "reproduced_sd"]].tolist() == [60.0, 9.0]
    assert np.isnan(reproduced.loc["x.missing", "reproduced"])
    table = comparison_table(values, reproduced.reset_index(), synthetic=True).droplevel(0)
    assert table.loc["m.acc", "Paper"] == "74.52 (63.9–83.2)"
    assert table.loc["m.acc", "Reproduced (95% CI)"] == "50.00 (40.00–60.00)"
    assert table.loc["m.acc", "Oracle (95% CI)"] == "70.00 (60.00–80.00)"
    assert table.loc["r.min", "Paper"] == "about 28"
    assert table.loc["t.age", "Paper"] == "62.45 ± 11.85"
    assert table.loc["x.missing", ["Paper", "Reproduced (95% CI)"]].tolist() == ["lost", "—"]
    assert "Oracle (95% CI)" not in comparison_table(values, reproduced.reset_index(), synthetic=False)


# --- claims -----------------------------------------------------------------------------------------


def test_verdicts() -> None:
    assert (
        verdict(0.01, 0.2) == HOLDS
        and verdict(-0.2, -0.01) == DOES_NOT_HOLD
        and verdict(-0.1, 0.1) == UNDECIDED
    )
    assert verdict(np.nan, 0.1) == UNDECIDED
    assert combined_verdict([HOLDS, HOLDS]) == HOLDS
    assert combined_verdict([HOLDS, UNDECIDED]) == UNDECIDED
    assert combined_verdict([HOLDS, DOES_NOT_HOLD]) == DOES_NOT_HOLD
    assert combined_verdict([]) == UNDECIDED


def test_claims_hold_for_a_better_model_and_do_not_hold_for_a_worse_one() -> None:
    better, _ = paper_claims(_test_scans(model_noise=0.3, reader_noise=3.0), ["ctnet", "baseline"], 300, 1)
    worse, mrmc = paper_claims(_test_scans(model_noise=4.0, reader_noise=0.3), ["ctnet", "baseline"], 300, 1)
    better, worse = better.set_index("claim_id")["verdict"], worse.set_index("claim_id")["verdict"]
    for claim in (
        "auc_vs_clinician_average",
        "sensitivity_vs_every_clinician",
        "f1_vs_every_clinician",
        "accuracy_vs_every_clinician",
        "auc_vs_baselines",
        "accuracy_vs_baselines",
    ):
        assert better[claim] == HOLDS, claim
    for claim in ("auc_vs_clinician_average", "f1_vs_every_clinician", "accuracy_vs_every_clinician"):
        assert worse[claim] == DOES_NOT_HOLD, claim
    assert list(mrmc["analysis"]) == ["RRRC", "RRFC", "FRRC"] and (mrmc["n_patients"] == 80).all()
    assert better["attention_on_infarct"] == UNDECIDED


def test_claims_without_readers_or_baselines_are_undecided_with_a_reason() -> None:
    scans = _test_scans(0.3, 3.0)
    scans = scans[[c for c in scans.columns if "Clinician" not in c and "baseline" not in c]]
    claims, mrmc = paper_claims(scans, ["ctnet"], 100, 1)
    assert mrmc is None
    # The Discussion's comparisons with other studies' published AUCs need neither readers nor baselines.
    other_studies = claims["claim_id"].isin(["auc_above_clinical_data_model", "auc_above_clinical_scales"])
    assert other_studies.sum() == 2 and (claims.loc[other_studies, "verdict"] != UNDECIDED).all()
    assert (claims.loc[~other_studies, "verdict"] == UNDECIDED).all()
    details = claims.set_index("claim_id")["detail"]
    assert details["auc_vs_clinician_average"] == "fewer than 2 readers"
    assert details["sensitivity_vs_every_clinician"] == "no reader study"
    assert details["auc_vs_baselines"] == "no baseline models"

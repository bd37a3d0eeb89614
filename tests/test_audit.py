"""The audit's rules for every printed cell, each on constructed inputs with a known answer.

(tests/test_paper.py covers reachability, one confusion matrix per row, the prevalence formulas, F1,
intervals and the count checks; this file the Table 1 rows, the Average row, the text against the
tables, one test set's HT share, the split probability and the placements of inferred cells.)
"""

from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats
from test_paper import entry, values_of  # the constructed values files of the audit's other tests

from htct.paper.audit import (
    CONSISTENT,
    INCONSISTENT,
    audit_values,
    check_averages,
    check_one_test_set,
    check_placements,
    check_reachable,
    check_row_denominators,
    check_table1,
    check_text_against_tables,
    split_probability,
)


def by_subject(findings) -> dict[str, tuple[str, str]]:
    return {f.subject: (f.result, f.detail) for f in findings}


def sizes(total: int, training: int, test: int) -> list[dict]:
    return [
        entry("text.patients", total, unit="count", decimals=0),
        entry("text.train_patients", training, unit="count", decimals=0),
        entry("text.test_patients", test, unit="count", decimals=0),
    ]


def t1(group: str, column: str, key: str, count: int | None, pct: float, decimals: int = 2, **extra) -> dict:
    variable, level = {"male": ("sex", "M"), "female": ("sex", "F")}[key]
    return entry(
        f"table1.{group}.{key}",
        pct,
        decimals=decimals,
        section="Table 1",
        row=key.title(),
        column=column,
        denominator="patients",
        compare={"kind": "table1", "group": group, "variable": variable, "level": level},
        **({"count": count} if count is not None else {}),
        **extra,
    )


def test_table1_counts_are_k_of_their_columns_n_and_rows_add_up() -> None:
    values = values_of(
        *sizes(10, 8, 4),  # 8 + 4 = 12 > 10: two patients in both parts
        t1("total", "Total", "male", 6, 60.0),
        t1("training", "Training", "male", 5, 62.5),
        t1("test", "Test", "male", 3, 75.01),  # 3/4 = 75.00, printed 75.01: a misprint
        t1("total", "Total", "female", 4, 40.0),
        t1("training", "Training", "female", 3, 37.5),
        t1("test", "Test", "female", 1, 25.0),
    )
    reach = by_subject(check_reachable(values))
    assert reach["table1.training.male 62.50%"][0] == CONSISTENT  # 5/8 of the training column, not of 10
    assert "printed 5/8" in reach["table1.training.male 62.50%"][1]
    assert reach["table1.test.male 75.01%"][0] == INCONSISTENT
    assert "3/4 test patients = 75.0000%, not 75.01%" in reach["table1.test.male 75.01%"][1]
    rows = by_subject(check_table1(values))
    assert rows["Table 1 Male: training + test = total"] == (
        INCONSISTENT,
        "5 + 3 = 8 vs 6 (+2: the parts overlap or the total is not their sum)",
    )
    assert rows["Table 1 Female: training + test = total"][0] == CONSISTENT  # 3 + 1 = 4
    assert rows["Table 1 Test: sex counts add up to the column's patients"] == (
        CONSISTENT,
        "3 + 1 = 4 vs 4 patients",
    )
    assert rows["Table 1 Training: sex counts add up to the column's patients"][0] == CONSISTENT


def test_table1_age_means_combine_with_the_column_sizes() -> None:
    def age(group: str, column: str, mean: float) -> dict:
        return entry(
            f"table1.{group}.age", mean, unit="years", sd=1.0, section="Table 1", row="Age", column=column
        )

    good = values_of(
        *sizes(4, 3, 1),
        age("total", "Total", 61.0),
        age("training", "Training", 60.0),
        age("test", "Test", 64.0),
    )
    assert check_table1(good)[0].result == CONSISTENT  # (3·60 + 64) / 4 = 61
    bad = values_of(
        *sizes(4, 3, 1),
        age("total", "Total", 62.0),
        age("training", "Training", 60.0),
        age("test", "Test", 64.0),
    )
    assert check_table1(bad)[0].result == INCONSISTENT


def _rater(r: int, metric: str, value: float | None) -> dict:
    return entry(f"t2.clinician{r}.{metric}", value, section="Table 2", row=f"Clinician {r}", column=metric)


def _average(metric: str, value: float) -> dict:
    return entry(
        f"t2.average.{metric}", value, section="Table 2", row="Average", column=metric, average_of="Clinician"
    )


def test_average_row_against_the_mean_per_column_with_lost_cells_bounded() -> None:
    values = values_of(
        _rater(1, "sensitivity", 40.0),
        _rater(2, "sensitivity", 50.0),
        _average("sensitivity", 45.0),  # exact mean
        _rater(1, "accuracy", 40.0),
        _rater(2, "accuracy", 50.0),
        _average("accuracy", 46.0),  # not the mean
        _rater(1, "specificity", 80.0),
        _rater(2, "specificity", None),  # lost
        _average("specificity", 90.0),  # needs the lost cell at 100
        _rater(1, "ppv", 70.0),
        _rater(2, "ppv", None),
        _average("ppv", 75.0),  # alone fine (lost cell 80) but specificity 100 forces PPV 100
    )
    found = by_subject(check_averages(values))
    assert found["Average sensitivity = mean of the 2 clinician rows"][0] == CONSISTENT
    assert found["Average accuracy = mean of the 2 clinician rows"][0] == INCONSISTENT
    result, detail = found["Average specificity = mean of the 2 clinician rows"]
    assert (
        result == CONSISTENT
        and "lost cells to average 99.99–100.00" in detail
        and "specificity 100" in detail
    )
    result, detail = found["Average ppv = mean of the 2 clinician rows"]
    assert result == CONSISTENT and "lost cells to average 79.99–80.01" in detail
    result, detail = found["Average PPV given the specificity it forces"]
    assert result == INCONSISTENT and "the PPV mean is then 85.00–85.00" in detail
    # with no lost cell at all, nothing is forced
    assert "Average PPV given the specificity it forces" not in by_subject(
        check_averages(values_of(*[_rater(1, "ppv", 70.0), _average("ppv", 70.0)]))
    )
    # an average that no value of its lost cells can give
    impossible = values_of(
        _rater(1, "specificity", 20.0), _rater(2, "specificity", None), _average("specificity", 70.0)
    )
    assert check_averages(impossible)[0].result == INCONSISTENT


def test_text_statistics_against_the_table_cells() -> None:
    values = values_of(
        _rater(1, "auc", 62.95),
        _rater(2, "auc", 75.12),
        entry("text.readers.auc.min", 0.630, unit="fraction", decimals=3),
        entry("text.readers.auc.max", 0.752, unit="fraction", decimals=3),  # 75.12% is 0.751
        entry("text.readers.auc.mean", 0.690, unit="fraction", decimals=3),  # (62.95 + 75.12) / 2 = 69.035
        entry(
            "text.age",
            60.0,
            unit="years",
            sd=2.0,
            compare={"kind": "table1", "group": "total", "variable": "age"},
        ),
        entry(
            "table1.total.age",
            60.0,
            unit="years",
            sd=2.5,
            section="Table 1",
            row="Age",
            column="Total",
            compare={"kind": "table1", "group": "total", "variable": "age"},
        ),
    )
    found = by_subject(check_text_against_tables(values))
    assert found["text: clinicians' auc min 0.63 against Table 2"][0] == CONSISTENT
    assert found["text: clinicians' auc max 0.752 against Table 2"][0] == INCONSISTENT
    assert found["text: clinicians' auc mean 0.69 against Table 2"][0] == CONSISTENT
    assert found["text: text.age against Table 1"] == (
        INCONSISTENT,
        "text 60.00 ± 2.00 vs Table 1 60.00 ± 2.50",
    )


def _row(prefix: str, accuracy: float, sensitivity: float, specificity: float) -> list[dict]:
    return [
        entry(f"{prefix}.{metric}", value, denominator="test_scans")
        for metric, value in (
            ("accuracy", accuracy),
            ("sensitivity", sensitivity),
            ("specificity", specificity),
        )
    ]


def test_rows_of_one_test_set_must_imply_one_prevalence() -> None:
    # 50% prevalence: acc = (sens + spec) / 2
    agree = values_of(*_row("a", 70.0, 60.0, 80.0), *_row("b", 65.0, 50.0, 80.0))
    result, detail = by_subject(check_one_test_set(agree))["rows of the one test set imply one HT share"]
    assert result == CONSISTENT and "common share 50.0–50.0%" in detail
    # the second row implies (62.5 - 90) / (40 - 90) = 55%
    differ = values_of(*_row("a", 70.0, 60.0, 80.0), *_row("b", 62.5, 40.0, 90.0))
    result, detail = by_subject(check_one_test_set(differ))["rows of the one test set imply one HT share"]
    assert result == INCONSISTENT and "b 55.0–55.0%" in detail


def test_split_probability_is_the_exact_binomial_p_of_the_implied_count() -> None:
    # 40 of 61 HT scans (65.6%) when the cohort is 48.7% HT
    assert split_probability(0.655, 0.657, 61, [0.487]) == pytest.approx(
        stats.binomtest(40, 61, 0.487).pvalue
    )
    # the most favourable reading: the larger p over the printed cohort shares
    assert split_probability(0.655, 0.657, 61, [0.487, 0.513]) == pytest.approx(
        stats.binomtest(40, 61, 0.513).pvalue
    )
    assert split_probability(0.49, 0.51, 61, [0.5]) == pytest.approx(1.0)


def test_placements_of_inferred_cells_each_tried_against_the_row() -> None:
    # A row of 100 scans, 60 HT: TP 45, FN 15, FP 8, TN 32 -> acc 77, sens 75, spec 80, PPV 84.91, F1 79.65.
    # The two inferred cells 80.00 and 84.91 were printed without their columns.
    placed = {"status": "inferred", "inference": "constructed", "placed_among": ["r.specificity", "r.ppv"]}
    values = values_of(
        entry("text.test_scans", 100, unit="count", decimals=0),
        entry("r.accuracy", 77.0, denominator="test_scans"),
        entry("r.sensitivity", 75.0, denominator="test_positive_scans"),
        entry("r.f1", 79.65, denominator="f1"),
        entry("r.specificity", 84.91, denominator="test_negative_scans", **placed),  # the wrong way round
        entry("r.ppv", 80.0, denominator="test_positive_calls", **placed),
    )
    found = by_subject(check_placements(values))
    assert set(found) == {"r: ppv 80, specificity 84.91 (as filed)", "r: ppv 84.91, specificity 80"}
    result, detail = found["r: ppv 84.91, specificity 80"]
    assert (
        result == CONSISTENT
        and detail.startswith("2 of 2 rules hold")
        and "one confusion matrix: 100" in detail
    )
    result, detail = found["r: ppv 80, specificity 84.91 (as filed)"]
    assert result == INCONSISTENT and detail.startswith("0 of 2 rules hold")
    # the audit marks findings that use an inferred cell
    table = audit_values(values)
    assert set(table.loc[table["check"] == "placement of inferred cells", "evidence"]) == {"uses inferred"}


def test_the_papers_audit_on_every_cell() -> None:
    from htct.paper import load_paper_values
    from tests.test_paper import VALUES_FILE  # noqa: PLC0415  (one values file for both test modules)

    findings = audit_values(load_paper_values(VALUES_FILE)).set_index(["check", "subject"])
    result = findings["result"]
    assert (
        result[("reachable as k/n", "Table 1 Antiplatelet agent, n (%) (test) 72.14%")] == INCONSISTENT
    )  # 44/61 = 72.13
    assert (
        result[("Table 1 rows", "Table 1 Male: training + test = total")] == INCONSISTENT
    )  # 323 + 47 = 370 vs 351
    assert (
        result[("average row", "Average (clinician) Sensitivity = mean of the 8 clinician rows")]
        == CONSISTENT
    )
    assert result[("average row", "Average (clinician) PPV given the specificity it forces")] == INCONSISTENT
    assert result[("text against tables", "text: clinicians' auc max 0.751 against Table 2")] == CONSISTENT
    placements = findings.loc["placement of inferred cells"]
    assert len(placements) == 2
    filed = placements.loc["table2.ctnet: ppv 87.48, specificity 80.29 (as filed)", "detail"]
    other = placements.loc["table2.ctnet: ppv 80.29, specificity 87.48", "detail"]
    assert "(0.02 points apart)" in filed and "(25.90 points apart)" in other
    assert not (pd.Series(findings["evidence"]).isin(["verified", "uses unverified"])).any()


def test_sensitivity_specificity_and_ppv_against_the_rows_own_denominators() -> None:
    # 100 scans, 60 HT: TP 45, FN 15, FP 8, TN 32 -> acc 77, sens 75 (45/60), spec 80 (32/40), PPV 84.91 (45/53)
    def row(sensitivity: float, ppv: float) -> list[dict]:
        return [
            entry("text.test_scans", 100, unit="count", decimals=0),
            entry("r.accuracy", 77.0, denominator="test_scans"),
            entry("r.sensitivity", sensitivity, denominator="test_positive_scans"),
            entry("r.specificity", 80.0, denominator="test_negative_scans"),
            entry("r.ppv", ppv, denominator="test_positive_calls"),
        ]

    found = check_row_denominators(values_of(*row(75.0, 84.91)))
    assert found[0].result == CONSISTENT
    assert "60 HT / 40 non-HT, sensitivity 45/60, specificity 32/40, PPV 45/53" in found[0].detail
    # 84.00 is no TP/(TP + FP) of those counts: 45/53 = 84.91%
    assert check_row_denominators(values_of(*row(75.0, 84.0)))[0].result == INCONSISTENT
    # 74.00 of 60 HT scans is no k/60 (44/60 = 73.33%, 45/60 = 75.00%): the implied share moves, no n fits
    bad = check_row_denominators(values_of(*row(74.0, 84.91)))[0]
    assert bad.result == INCONSISTENT and "sensitivity not k/" in bad.detail

"""Tables 2-3, agreement/tests tables and numbers.json from fixture predictions."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from htct.evaluate import binary_metrics, bootstrap_metrics
from htct.evaluate.study import evaluate_study, with_reader_average
from htct.tables.numbers import paper_numbers, write_numbers
from htct.tables.reader_study import AVERAGE_READER, EVERY_SCAN_HT, EVERY_SCAN_HT_LABEL, ci_table

MODELS = ["ctnet", "wozniak2023", "soundari2022"]
READERS = [f"Clinician {i}" for i in range(1, 9)]


def _fixture(n_patients: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        label = int(rng.random() < 0.6)
        for k in range(1, rng.integers(1, 3) + 1):
            rows.append({"patient_id": f"P{p:03d}", "scan_id": f"P{p:03d}_scan{k}", "y_true": label})
    scans = pd.DataFrame(rows)
    signal = scans["y_true"].to_numpy() + rng.normal(0, 0.8, len(scans))
    predictions = {}
    for i, model in enumerate(MODELS):
        p = 1 / (1 + np.exp(-(signal * (1.5 - 0.5 * i) + rng.normal(0, 0.5 * i + 0.01, len(scans)))))
        predictions[model] = scans.assign(split="test", p_ht=p, threshold=0.5)
    readers = pd.DataFrame(
        [
            {"scan_id": s, "reader": r, "p_ht": float(1 / (1 + np.exp(-(sig - 1.0 + rng.normal(0, 0.7)))))}
            for r in READERS
            for s, sig in zip(scans["scan_id"], signal, strict=True)
        ]
    )
    return scans, predictions, readers


def test_table2_and_table3_layout_and_values():
    scans, predictions, readers = _fixture()
    out = evaluate_study(predictions, readers, n_bootstrap=200, seed=1)
    table2 = out["table2"]
    assert list(table2.index) == ["CTNet", *READERS, AVERAGE_READER, EVERY_SCAN_HT_LABEL]
    assert list(table2.columns) == ["Accuracy", "Sensitivity", "Specificity", "PPV", "F1", "AUC"]
    table3 = out["table3"]
    assert list(table3.index) == [
        "CTNet",
        "Woźniak et al. (2023)",
        "Soundari et al. (2022)",
        EVERY_SCAN_HT_LABEL,
    ]
    assert list(table3.columns) == ["Accuracy", "Sensitivity", "Specificity", "F1 (macro)"]
    # The point estimate in the table is the plain metric on the test scans, in percent.
    ordered = scans.sort_values("scan_id")
    expected = binary_metrics(
        ordered["y_true"], predictions["ctnet"].set_index("scan_id").loc[ordered["scan_id"], "p_ht"], 0.5
    )
    assert table2.loc["CTNet", "Accuracy"].startswith(f"{100 * expected['accuracy']:.2f} (")
    assert table3.loc["CTNet", "F1 (macro)"].startswith(f"{100 * expected['macro_f1']:.2f} (")
    # The average row is the mean of the readers' point estimates.
    metrics = out["metrics"].set_index(["rater", "metric"])
    mean_sens = np.mean([metrics.loc[(r, "sensitivity"), "value"] for r in READERS])
    assert metrics.loc[(AVERAGE_READER, "sensitivity"), "value"] == pytest.approx(mean_sens)
    assert list(out["tests"].index) == [
        f"CTNet vs {name}" for name in ["Woźniak et al. (2023)", "Soundari et al. (2022)", *READERS]
    ]
    assert out["agreement"].shape == (18, 9)


def test_every_scan_ht_reference_row_scores_the_prevalence():
    scans, predictions, readers = _fixture(seed=7)
    out = evaluate_study(predictions, readers, n_bootstrap=200, seed=1)
    p = scans["y_true"].mean()
    row = out["table2_tidy"].query("Rater == @EVERY_SCAN_HT_LABEL").set_index("Metric")["estimate"]
    expected = {
        "Accuracy": p,
        "Sensitivity": 1,
        "Specificity": 0,
        "PPV": p,
        "F1": 2 * p / (1 + p),
        "AUC": 0.5,
    }
    assert row.to_dict() == pytest.approx({k: 100 * v for k, v in expected.items()})
    macro = out["table3_tidy"].query("Rater == @EVERY_SCAN_HT_LABEL and Metric == 'F1 (macro)'")["estimate"]
    assert macro.item() == pytest.approx(100 * p / (1 + p))
    # its interval is the prevalence's over the resamples; the other raters' are unchanged by it
    metrics = out["metrics"].set_index(["rater", "metric"])
    assert (
        metrics.loc[(EVERY_SCAN_HT, "accuracy"), "low"] < p < metrics.loc[(EVERY_SCAN_HT, "accuracy"), "high"]
    )
    assert not any(column.endswith(EVERY_SCAN_HT) for column in out["scans"].columns)
    assert EVERY_SCAN_HT_LABEL not in out["tests"].index.str.cat()


def test_tidy_tables_hold_the_numbers_and_the_pretty_tables_come_from_them():
    scans, predictions, readers = _fixture(seed=5)
    out = evaluate_study(predictions, readers, n_bootstrap=100, seed=2)
    metrics = out["metrics"].set_index(["rater", "metric"])
    tidy = out["table2_tidy"]
    assert list(tidy.columns) == ["Rater", "Metric", "estimate", "lower", "upper"]
    assert len(tidy) == out["table2"].size
    row = tidy.query("Rater == 'Clinician 3' and Metric == 'Specificity'").iloc[0]
    expected = 100 * metrics.loc[("Clinician 3", "specificity"), ["value", "low", "high"]].to_numpy()
    np.testing.assert_allclose(row[["estimate", "lower", "upper"]].to_numpy(dtype=float), expected)
    assert out["table2"].loc["Clinician 3", "Specificity"] == "{:.2f} ({:.2f}–{:.2f})".format(*expected)
    assert ci_table(out["table3_tidy"]).equals(out["table3"])
    tests = out["tests_tidy"]
    assert pd.api.types.is_float_dtype(tests["DeLong p"]) and tests["DeLong p"].between(0, 1).all()
    assert list(tests.columns) == list(out["tests"].columns)
    agreement = out["agreement_tidy"].query('statistic == "Cohen\'s kappa"')
    kappa = out["agreement_numeric"].loc["cohen_kappa"]
    assert agreement.query("rater == 'CTNet' and other_rater == 'Clinician 2'")[
        "value"
    ].item() == pytest.approx(kappa.loc["ctnet", "Clinician 2"])
    assert (
        out["agreement"].loc[("Cohen's kappa", "CTNet"), "Clinician 2"]
        == f"{kappa.loc['ctnet', 'Clinician 2']:.2f}"
    )


def test_average_interval_is_the_interval_of_the_mean():
    scans, predictions, readers = _fixture(30, seed=3)
    wide = readers.pivot(index="scan_id", columns="reader", values="p_ht").loc[scans["scan_id"]]
    scores = {r: wide[r].to_numpy() for r in READERS}
    result = bootstrap_metrics(
        scans["y_true"], scans["patient_id"], scores, dict.fromkeys(READERS, 0.5), 300, seed=2
    )
    averaged = with_reader_average(result, READERS)
    mean_replicates = np.nanmean(result.replicates["accuracy"], axis=1)
    np.testing.assert_allclose(averaged.replicates["accuracy"][:, -1], mean_replicates, rtol=1e-12)
    low, high = np.quantile(mean_replicates, [0.025, 0.975])
    row = averaged.ci().query("rater == @AVERAGE_READER and metric == 'accuracy'").iloc[0]
    assert (row["low"], row["high"]) == pytest.approx((low, high))


def test_numbers_json(tmp_path):
    scans, predictions, readers = _fixture()
    out = evaluate_study(predictions, readers, n_bootstrap=100, seed=1)
    patients = scans.drop_duplicates("patient_id")
    clinical = pd.DataFrame(
        {
            "patient_id": patients["patient_id"],
            "label": patients["y_true"],
            "age": 60.0,
            "sex": "M",
            "medication": "none",
        }
    )
    split_scans = scans.assign(part="test")
    numbers = paper_numbers(
        clinical,
        split_scans,
        out["metrics"],
        out["agreement_numeric"],
        float(out["fleiss_kappa"].iloc[0, 0]),
        MODELS,
        READERS,
        synthetic=True,
    )
    write_numbers(numbers, tmp_path / "numbers.json", tmp_path / "numbers.md")
    back = json.loads((tmp_path / "numbers.json").read_text())
    assert back["cohort"]["patients"] == 40 and back["cohort"]["scans"] == len(scans)
    assert back["cohort"]["scans_ht"] == int(scans["y_true"].sum())
    assert back["split"]["test"]["scans"] == len(scans)
    sens = [out["metrics"].set_index(["rater", "metric"]).loc[(r, "sensitivity"), "value"] for r in READERS]
    assert back["readers"]["sensitivity"]["min"] == pytest.approx(min(sens))
    # The readers' pairwise agreement range, recomputed from their calls on the test scans.
    calls = {
        reader: (readers[readers["reader"] == reader].set_index("scan_id")["p_ht"] >= 0.5)
        for reader in READERS
    }
    pairs = [
        np.mean(calls[a].sort_index().to_numpy() == calls[b].sort_index().to_numpy())
        for a, b in itertools.combinations(READERS, 2)
    ]
    assert back["agreement"]["percent_among_readers"]["min"] == pytest.approx(min(pairs))
    assert back["agreement"]["percent_among_readers"]["max"] == pytest.approx(max(pairs))
    assert "SYNTHETIC COHORT" in (tmp_path / "numbers.md").read_text()


def test_tests_table_is_patient_clustered_and_undefined_resamples_are_noted():
    from htct.tables.reader_study import TABLE2_METRICS, undefined_resamples_note

    scans, predictions, readers = _fixture(n_patients=12, seed=4)
    out = evaluate_study(predictions, readers, n_bootstrap=300, seed=2)
    assert (out["tests"]["Unit"] == "patient (clustered)").all()
    assert set(out["tests"]["McNemar method"]) == {"durkalski"}  # some patients have two scans
    long = out["metrics"]
    assert (long["n_undefined"] >= 0).all() and long["n_undefined"].dtype.kind == "i"
    constructed = pd.DataFrame(
        {
            "rater": ["ctnet", "Clinician 1", "Clinician 2", "ctnet", "Clinician 1", "Clinician 2"],
            "metric": ["ppv"] * 3 + ["auc"] * 3,
            "n_undefined": [0, 12, 3, 5, 5, 5],
        }
    )
    note = undefined_resamples_note(
        constructed, ["ctnet", "Clinician 1", "Clinician 2"], TABLE2_METRICS, 2000
    )
    assert note == (
        "Resamples left out where a metric was undefined (of 2000): PPV 0–12 (most: Clinician 1); AUC 5 (every rater)."
    )
    assert undefined_resamples_note(constructed.assign(n_undefined=0), ["ctnet"], TABLE2_METRICS, 2000) == ""


def test_without_a_reader_study_tables_have_no_reader_rows_and_numbers_no_reader_ranges(tmp_path):
    scans, predictions, _ = _fixture()
    out = evaluate_study(predictions, None, n_bootstrap=100, seed=1)
    assert list(out["table2"].index) == ["CTNet", EVERY_SCAN_HT_LABEL]
    assert set(out["metrics"]["rater"]) == {*MODELS, EVERY_SCAN_HT}
    assert list(out["tests"].index) == ["CTNet vs Woźniak et al. (2023)", "CTNet vs Soundari et al. (2022)"]
    # Agreement is among the models (3 x 3 percent and kappa blocks), not CTNet with itself.
    assert out["agreement"].shape == (6, 3)
    assert not [column for column in out["scans"] if column.startswith(("p_Clinician", "call_Clinician"))]
    patients = scans.drop_duplicates("patient_id")
    clinical = pd.DataFrame(
        {"patient_id": patients["patient_id"], "label": patients["y_true"], "age": 60.0, "sex": "F"}
    ).assign(medication="none")
    numbers = paper_numbers(
        clinical,
        scans.assign(part="test"),
        out["metrics"],
        out["agreement_numeric"],
        float(out["fleiss_kappa"].iloc[0, 0]),
        MODELS,
        [],
        synthetic=False,
    )
    write_numbers(numbers, tmp_path / "numbers.json", tmp_path / "numbers.md")
    back = json.loads((tmp_path / "numbers.json").read_text())
    assert back["readers"] == {} and "percent_among_readers" not in back.get("agreement", {})
    markdown = (tmp_path / "numbers.md").read_text()
    assert "reader" not in markdown.lower() and "SYNTHETIC" not in markdown


def test_delong_z_is_ctnet_minus_the_rater():
    """The tests table's z has the claims' sign: positive where CTNet's AUC is the higher."""
    _, predictions, readers = _fixture(seed=11)
    tests = evaluate_study(predictions, readers, n_bootstrap=50, seed=1)["tests_tidy"]
    z = tests["DeLong z (CTNet − rater)"]
    difference = tests["AUC CTNet"] - tests["AUC"]
    assert (difference != 0).all() and (np.sign(z) == np.sign(difference)).all()

"""The repeats (rules/repeats.smk, htct.paper.repeats): seeds, the image-level split, the spread, the
claims' "holds in k of n repeats", the leakage table; and per-model training options."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from htct.config import unknown_models
from htct.errors import HTCTInputError
from htct.paper.claims import DOES_NOT_HOLD, HOLDS, UNDECIDED
from htct.paper.repeats import (
    claims_with_repeats,
    convergence_table,
    holds_table,
    leakage_table,
    repeat_split,
    scans_of_split,
    spread_table,
)
from htct.repeats import repeat_ids, repeat_seeds, run_targets, scope_model_files, scope_repeats
from htct.split import check_split, make_image_split, make_split, patients_in_several_parts
from htct.train import TrainConfig
from htct.train.data import assign_parts


def _cohort(n_patients: int = 60, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A clinical sheet and its scans: every patient has 1-3 scans, half with HT."""
    rng = np.random.default_rng(seed)
    clinical = pd.DataFrame(
        {"patient_id": [f"P{i:03d}" for i in range(n_patients)], "label": np.arange(n_patients) % 2}
    )
    scans = pd.DataFrame(
        [
            {"scan_id": f"{p}_scan{k}", "patient_id": p}
            for p in clinical["patient_id"]
            for k in range(1, rng.integers(1, 4) + 1)
        ]
    )
    return clinical, scans


def test_repeat_names_and_seeds():
    assert repeat_ids(2, 2) == ["split1_seed1", "split1_seed2", "split2_seed1", "split2_seed2"]
    assert repeat_ids(0, 3) == []
    assert repeat_seeds("split3_seed2", split_seed=100, train_seed=7) == (103, 9)
    with pytest.raises(ValueError, match="splitI_seedJ"):
        repeat_seeds("seed2", 1, 1)
    repeats = {"splits": 2, "seeds": 1, "full_splits": 3, "full_seeds": 2, "image_split": False}
    assert set(scope_repeats(repeats, "run")) < set(
        scope_repeats(repeats, "full")
    )  # the full set reuses them
    assert "results/repeats/run/holds.tsv" in run_targets(repeats)
    assert not any("leakage" in t for t in run_targets(repeats))
    assert "results/repeats/run/leakage.html" in run_targets({**repeats, "image_split": True})
    assert run_targets({**repeats, "splits": 0}) == []
    two_models = {**repeats, "models": ["ctnet", "soundari2022"]}
    assert scope_model_files(two_models, "run", "predictions/{model}.tsv")[1:3] == [
        "results/repeats/patient/split2_seed1/predictions/ctnet.tsv",
        "results/repeats/patient/split1_seed1/predictions/soundari2022.tsv",
    ]
    assert scope_model_files(two_models, "run", "models/{model}/epochs.tsv") == [
        "results/repeats/patient/split1_seed1/models/ctnet/epochs.tsv",
        "results/repeats/patient/split2_seed1/models/ctnet/epochs.tsv",
        "results/repeats/patient/split1_seed1/models/soundari2022/epochs.tsv",
        "results/repeats/patient/split2_seed1/models/soundari2022/epochs.tsv",
    ]


def test_patient_level_repeats_redraw_the_test_patients_without_leaking():
    clinical, scans = _cohort()
    first = repeat_split(clinical, scans, "patient", 2027, 0.2, 0.2)
    second = repeat_split(clinical, scans, "patient", 2028, 0.2, 0.2)
    check_split(first, scans)
    test = [set(s.loc[s["part"] == "test", "patient_id"]) for s in (first, second)]
    assert test[0] != test[1]
    # The configured draw is the workflow's own split (same function, same seed).
    pd.testing.assert_frame_equal(first, make_split(clinical, scans, 2027, 0.2, 0.2))
    assert patients_in_several_parts(scans_of_split(first, scans)) == 0


def test_image_level_split_puts_a_patients_scans_on_both_sides(tmp_path):
    clinical, scans = _cohort()
    split = repeat_split(clinical, scans, "image", 2027, 0.2, 0.2)
    assert list(split.columns) == ["scan_id", "patient_id", "label", "part", "fold", "n_scans"]
    assert sorted(split["scan_id"]) == sorted(scans["scan_id"])
    assert set(split["part"]) == {"train", "val", "test"}
    per_scan = scans_of_split(split, scans)
    assert patients_in_several_parts(per_scan) > 0
    with pytest.raises(HTCTInputError, match="several parts"):
        check_split(per_scan)  # the workflow's own check refuses it
    # Training reads a scan's own part from such a split.
    index = scans.merge(clinical, on="patient_id").reset_index(names="row")
    index.to_csv(tmp_path / "index.tsv", sep="\t", index=False)
    split.to_csv(tmp_path / "split.tsv", sep="\t", index=False)
    parts = assign_parts(tmp_path / "index.tsv", tmp_path / "split.tsv").index
    expected = index.merge(split[["scan_id", "part"]], on="scan_id")
    assert parts.set_index("scan_id")["part"].to_dict() == expected.set_index("scan_id")["part"].to_dict()


def test_image_level_split_refuses_too_few_scans_of_a_class():
    scans = pd.DataFrame({"scan_id": ["a", "b", "c", "d"], "patient_id": list("abcd"), "label": [0, 0, 0, 1]})
    with pytest.raises(HTCTInputError, match="scans per label"):
        make_image_split(scans)


def _repeat_metrics(values: dict[str, list[float]], kind: str = "patient") -> pd.DataFrame:
    rows = []
    for rater_metric, per_repeat in values.items():
        rater, metric = rater_metric.split(":")
        for i, value in enumerate(per_repeat):
            rows.append({"repeat": f"split{i + 1}_seed1", "split_kind": kind, "rater": rater, "metric": metric,
                         "value": value})  # fmt: skip
    return pd.DataFrame(rows)


def _repeat_claims(verdicts: dict[str, list[tuple[float, str]]]) -> pd.DataFrame:
    rows = [
        {
            "repeat": f"split{i + 1}_seed1",
            "claim_id": claim_id,
            "claim": claim_id,
            "estimate": est,
            "verdict": v,
        }
        for claim_id, per_repeat in verdicts.items()
        for i, (est, v) in enumerate(per_repeat)
    ]
    return pd.DataFrame(rows, columns=["repeat", "claim_id", "claim", "estimate", "verdict"])


def test_spread_table_has_median_percentiles_paper_and_headline_place():
    aucs = [0.70, 0.72, 0.74, 0.76, 0.78]
    metrics = _repeat_metrics({"ctnet:auc": aucs, "Average (clinician):auc": [0.68] * 5})
    claims = _repeat_claims({"auc_vs_clinician_average": [(a - 0.68, HOLDS) for a in aucs]})
    headline = pd.DataFrame({"rater": ["ctnet"], "metric": ["auc"], "value": [0.75]})
    spread = spread_table(metrics, claims, headline, None, ["ctnet"]).set_index(["rater", "metric"])
    row = spread.loc[("ctnet", "auc")]
    assert row["n"] == 5
    assert row["median"] == pytest.approx(0.74)
    assert row["low"] == pytest.approx(np.percentile(aucs, 2.5))
    assert row["high"] == pytest.approx(np.percentile(aucs, 97.5))
    assert row["headline"] == 0.75 and row["headline_percentile"] == pytest.approx(0.6)
    assert np.isnan(row["paper"])
    assert spread.loc[("ctnet", "auc_vs_clinician_average"), "median"] == pytest.approx(0.06)


def test_spread_table_places_the_papers_value(tmp_path):
    from htct.paper import load_paper_values

    metrics = _repeat_metrics({"ctnet:auc": [0.7, 0.8], "ctnet:f1": [0.6, 0.7]})
    spread = spread_table(metrics, _repeat_claims({}), metrics.iloc[:0], load_paper_values(
        "resources/paper/zhang2026.yaml"), ["ctnet"]).set_index("metric")  # fmt: skip
    assert spread.loc["auc", "paper"] == pytest.approx(0.842)  # the abstract's CTNet AUC
    assert spread.loc["f1", "paper"] == pytest.approx(0.7894)  # 78.94 %, as a fraction


def test_holds_in_k_of_n_repeats_joined_on_claim_id():
    claims = _repeat_claims(
        {
            "auc_vs_clinician_average": [(0.1, HOLDS), (0.05, HOLDS), (-0.01, UNDECIDED)],
            "f1_vs_every_clinician": [(-0.2, DOES_NOT_HOLD), (0.0, UNDECIDED), (0.1, HOLDS)],
        }
    )
    holds = holds_table(claims).set_index("claim_id")
    assert holds.loc["auc_vs_clinician_average", "holds_in"] == "holds in 2 of 3 repeats"
    assert holds.loc["f1_vs_every_clinician", ["n_holds", "n_does_not_hold", "n_undecided"]].tolist() == [
        1,
        1,
        1,
    ]
    headline = pd.DataFrame(
        {"claim_id": ["auc_vs_clinician_average", "attention_on_infarct"], "estimate": [0.08, 0.3],
         "verdict": [HOLDS, HOLDS]}
    )  # fmt: skip
    pretty = pd.DataFrame({"Verdict": [HOLDS, HOLDS], "Difference": ["a", "b"], "Test": ["t", "t"]})
    joined, shown = claims_with_repeats(headline, pretty, holds.reset_index())
    assert joined["holds_in"].tolist() == ["holds in 2 of 3 repeats", "not repeated"]
    assert shown["Repeats"].iloc[0].startswith("holds in 2 of 3 repeats; median +0.050")
    assert shown["Repeats"].iloc[1] == "not repeated"


def test_leakage_is_image_minus_patient_per_repeat():
    patient = _repeat_metrics({"ctnet:auc": [0.70, 0.72, 0.74], "ctnet:f1": [0.6, 0.6, 0.6]}, "patient")
    image = _repeat_metrics({"ctnet:auc": [0.80, 0.80, 0.90], "ctnet:f1": [0.7, 0.6, 0.65]}, "image")
    table = leakage_table(pd.concat([patient, image]), "ctnet").set_index("metric")
    assert table.loc["auc", "n"] == 3
    assert table.loc["auc", "inflation_median"] == pytest.approx(0.10)
    assert table.loc["auc", "inflation_high"] == pytest.approx(np.percentile([0.10, 0.08, 0.16], 97.5))
    assert table.loc["f1", "inflation_median"] == pytest.approx(0.05)
    assert "sensitivity" not in table.index  # not measured: no row rather than a made-up one


def _training(root, repeat, val_auc, best_epoch):
    folder = root / "results/repeats/patient" / repeat / "models" / "ctnet"
    folder.mkdir(parents=True)
    epochs = pd.DataFrame({"epoch": range(1, len(val_auc) + 1), "val_loss": 0.5, "val_auc": val_auc})
    epochs.to_csv(folder / "epochs.tsv", sep="\t", index=False)
    (folder / "threshold.json").write_text(f'{{"best_epoch": {best_epoch}, "threshold": 0.5}}')
    return str(folder / "epochs.tsv"), str(folder / "threshold.json")


def test_convergence_table_reads_each_trainings_selected_and_learning_epochs(tmp_path):
    late = _training(tmp_path, "split1_seed1", [0.5, 0.6, 0.7, 0.76, 0.8, 0.81], best_epoch=5)
    never = _training(tmp_path, "split2_seed1", [0.5, 0.55, 0.6], best_epoch=3)
    table = convergence_table([late[0], never[0]], [late[1], never[1]]).set_index("repeat")
    assert table.loc["split1_seed1", "first_epoch_learning"] == 4
    assert table.loc["split1_seed1", "best_before_last"] and table.loc["split1_seed1", "epochs_run"] == 6
    assert table.loc["split1_seed1", "val_auc_selected"] == 0.8
    assert np.isnan(table.loc["split2_seed1", "first_epoch_learning"])
    assert not table.loc["split2_seed1", "best_before_last"]
    with pytest.raises(ValueError, match="same training"):
        convergence_table([late[0]], [never[1]])


def _val_predictions(root, repeat, scan_ids, y_true):
    folder = root / "results/repeats/patient" / repeat / "predictions"
    folder.mkdir(parents=True)
    table = pd.DataFrame(
        {"patient_id": scan_ids, "scan_id": scan_ids, "split": "val", "y_true": y_true, "p_ht": 0.5}
    )
    # A test scan the oracle's validation AUC must leave out: it would turn the AUC to 0.5.
    test = pd.DataFrame({"patient_id": ["t"], "scan_id": ["t"], "split": "test", "y_true": [0], "p_ht": 0.5})
    pd.concat([table, test]).to_csv(folder / "ctnet.tsv", sep="\t", index=False)
    return str(folder / "ctnet.tsv")


def test_convergence_table_gives_the_oracles_auc_on_each_repeats_validation_scans(tmp_path):
    """The oracle's validation AUC is the ceiling of each split's validation set: 1.0 where its
    probabilities rank the validation scans perfectly, 0.75 where one pair of four is misranked."""
    first = _training(tmp_path, "split1_seed1", [0.5, 0.8], best_epoch=2)
    second = _training(tmp_path, "split2_seed1", [0.5, 0.6], best_epoch=2)
    predictions = [
        _val_predictions(tmp_path, "split1_seed1", ["a", "b", "c", "d"], [0, 0, 1, 1]),
        _val_predictions(tmp_path, "split2_seed1", ["a", "b", "c", "d"], [0, 1, 0, 1]),
    ]
    truth = tmp_path / "scans.tsv"
    pd.DataFrame({"scan_id": ["a", "b", "c", "d", "t"], "p_image_scan": [0.1, 0.2, 0.8, 0.9, 0.99]}).to_csv(
        truth, sep="\t", index=False
    )
    table = convergence_table([first[0], second[0]], [first[1], second[1]], predictions, tmp_path).set_index(
        "repeat"
    )
    assert table.loc["split1_seed1", "val_auc_oracle"] == 1.0
    assert table.loc["split2_seed1", "val_auc_oracle"] == 0.75
    assert "val_auc_oracle" not in convergence_table([first[0]], [first[1]]).columns
    with pytest.raises(ValueError, match="same repeat"):
        convergence_table([first[0]], [first[1]], predictions[1:], tmp_path)
    pd.DataFrame({"scan_id": ["a"], "p_image_scan": [0.1]}).to_csv(truth, sep="\t", index=False)
    with pytest.raises(ValueError, match="no p_image_scan for validation scan b"):
        convergence_table([first[0]], [first[1]], predictions[:1], tmp_path)


def test_per_model_training_options():
    train = {"lr": 0.002, "epochs": 20, "per_model": {"ctnet": {"lr": 0.001}}, "models": ["ctnet"]}
    assert TrainConfig.from_mapping(train, model="ctnet").lr == 0.001
    assert TrainConfig.from_mapping(train, model="wozniak2023").lr == 0.002
    assert TrainConfig.from_mapping(train, model="ctnet", lr=0.005).lr == 0.005  # explicit overrides win
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_mapping({"per_model": {"ctnet": {"lrate": 0.1}}}, model="ctnet")
    assert (
        TrainConfig.from_mapping(
            {"per_model": {"ctnet": {"warmup_fraction": 0.1}}}, model="ctnet"
        ).warmup_fraction
        == 0.1
    )
    # The schema's default recipe: CTNet's own peak rate, the baselines' the shared one.
    assert TrainConfig.from_mapping({}, model="ctnet").lr == 0.001
    assert TrainConfig.from_mapping({}, model="ctnet").warmup_fraction == 0.1
    assert TrainConfig.from_mapping({}, model="wozniak2023").warmup_fraction == 0.2
    assert TrainConfig.from_mapping({}, model="soundari2022").lr == TrainConfig.from_mapping({}).lr == 0.002
    (problem,) = unknown_models({"models": ["ctnet"], "per_model": {"ctnett": {"lr": 0.1}}})
    assert problem.startswith("config `train.per_model`: unknown model `ctnett`")


@pytest.mark.slow
def test_tiny_run_has_the_repeats(tiny_run):
    """The default run's repeats (tiny config: 2 repeats of CTNet): one job each, the spread, the
    claims' 'holds in k of n repeats'."""
    root = tiny_run / "results" / "repeats"
    repeats = sorted(p.name for p in (root / "patient").iterdir())
    assert repeats == ["split1_seed1", "split2_seed1"]
    splits = [pd.read_csv(root / "patient" / r / "split.tsv", sep="\t", dtype=str) for r in repeats]
    assert splits[0]["part"].tolist() != splits[1]["part"].tolist()
    for repeat in repeats:
        assert (root / "patient" / repeat / "models" / "ctnet" / "epochs.tsv").is_file()
        metrics = pd.read_csv(root / "patient" / repeat / "metrics.tsv", sep="\t")
        assert {"ctnet", "Average (clinician)", "oracle"} <= set(metrics["rater"])
    spread = pd.read_csv(root / "run" / "spread.csv")
    assert (spread.loc[spread["quantity"] == "metric", "n"] == 2).all()
    assert spread["synthetic"].all()
    assert "SYNTHETIC COHORT" in (root / "run" / "spread.html").read_text()
    assert (root / "run" / "spread.png").stat().st_size > 10_000
    claims = pd.read_csv(tiny_run / "results" / "paper" / "claims.tsv", sep="\t")
    repeated = claims.set_index("claim_id")["holds_in"]
    assert repeated["auc_vs_clinician_average"].endswith("of 2 repeats")
    assert repeated["attention_on_infarct"] == "not repeated"
    convergence = pd.read_csv(root / "run" / "convergence.tsv", sep="\t")
    assert convergence[["repeat", "model"]].values.tolist() == [[r, "ctnet"] for r in repeats]
    assert (convergence["best_epoch"] <= convergence["epochs_run"]).all()
    assert convergence["val_auc_oracle"].between(0, 1).all()

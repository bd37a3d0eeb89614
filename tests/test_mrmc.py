"""Tests of htct.evaluate.mrmc: Obuchowski–Rockette on the Van Dyke data, standalone vs readers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from htct.evaluate.mrmc import jackknife_aucs, jackknife_covariance, or_analysis, standalone_vs_readers


@pytest.fixture(scope="module")
def vandyke(shared_data):
    """Ratings [treatment, reader, case] and truth [case] of the Van Dyke study."""
    data = pd.read_csv(shared_data / "reference" / "vandyke.csv").sort_values(["treatment", "reader", "case"])
    treatments, readers, cases = (sorted(data[c].unique()) for c in ("treatment", "reader", "case"))
    ratings = data["rating"].to_numpy().reshape(len(treatments), len(readers), len(cases))
    truth = data[(data["treatment"] == treatments[0]) & (data["reader"] == readers[0])]["truth"].to_numpy()
    return ratings, truth


def test_or_analysis_reproduces_the_published_van_dyke_results(vandyke) -> None:
    """Every figure of ../shared/data/reference/README.md, to its printed digits."""
    ratings, truth = vandyke
    auc, jackknife = jackknife_aucs(truth, ratings)
    assert np.round(auc, 4).tolist() == [
        [0.9196, 0.8588, 0.9039, 0.9731, 0.8298],
        [0.9478, 0.9053, 0.9217, 0.9994, 0.9300],
    ]
    result = or_analysis(auc, jackknife)
    v = result.variance
    assert [f"{x:.4g}" for x in (v.var, v.cov1, v.cov2, v.cov3)] == [
        "0.0008023",
        "0.0003466",
        "0.0003441",
        "0.000239",
    ]
    assert f"{result.ms_t:.4g}" == "0.004796"
    assert f"{result.ms_tr:.3g}" == "0.000551"
    rrrc = result.rrrc.iloc[0]
    assert (round(rrrc["f"], 3), rrrc["df1"], round(rrrc["df2"], 2), round(rrrc["p"], 5)) == (
        4.456,
        1,
        15.26,
        0.05167,
    )
    difference = result.differences.iloc[0]
    assert round(difference["estimate"], 4) == -0.0438
    assert (round(difference["rrrc_low"], 4), round(difference["rrrc_high"], 4)) == (-0.0880, 0.0004)
    treatments = result.treatments.round({"auc": 4, "rrrc_low": 4, "rrrc_high": 4, "rrrc_df": 2})
    assert treatments[["auc", "rrrc_low", "rrrc_high", "rrrc_df"]].values.tolist() == [
        [0.8970, 0.8252, 0.9689, 12.74],
        [0.9408, 0.8941, 0.9875, 12.71],
    ]
    frrc = result.frrc.iloc[0]
    assert (round(frrc["chi2"], 3), frrc["df"], round(frrc["p"], 5)) == (5.476, 1, 0.01928)
    assert (round(difference["frrc_low"], 4), round(difference["frrc_high"], 4)) == (-0.0805, -0.0071)


def test_jackknife_covariance_is_the_scaled_sum_of_squares() -> None:
    jack = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 5.0]])
    expected = (3 - 1) / 3 * np.array([[2.0, 3.0], [3.0, 6.0]])
    assert np.allclose(jackknife_covariance(jack), expected)


def test_patient_jackknife_leaves_out_all_scans_of_a_patient() -> None:
    y = np.array([1, 0, 1, 0, 1, 0])
    score = np.array([[0.9, 0.1, 0.4, 0.5, 0.8, 0.2]])
    patients = np.array(["a", "a", "b", "b", "c", "c"])
    auc, jack = jackknife_aucs(y, score, patients)
    keep = patients != "b"
    from htct.evaluate import auc as plain_auc

    assert jack[1, 0] == pytest.approx(plain_auc(y[keep], score[0, keep]))
    singletons = jackknife_aucs(y, score)[1]
    assert singletons.shape == (6, 1) and jack.shape == (3, 1)
    assert auc[0] == pytest.approx(plain_auc(y, score[0]))


def _standalone_data(seed: int = 3, n_cases: int = 60, n_readers: int = 5):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_cases)
    algorithm = truth + rng.normal(0, 0.8, n_cases)
    readers = truth[None, :] + rng.normal(0, 1.0, (n_readers, n_cases)) + rng.normal(0, 0.3, (n_readers, 1))
    return truth, algorithm, np.round(readers, 1)


def test_standalone_analysis_equals_two_treatment_or_with_the_algorithm_copied_to_every_reader() -> None:
    """RJafroc's 1T-RRRC gives the same F, ddf and p as OR on (algorithm replicated, readers) (Kooi 2016)."""
    truth, algorithm, readers = _standalone_data()
    scores = np.vstack([algorithm, readers])
    auc, jack = jackknife_aucs(truth, scores)
    single = standalone_vs_readers(auc[0], auc[1:], jack[:, 0], jack[:, 1:])
    two = or_analysis(
        np.vstack([np.full(readers.shape[0], auc[0]), auc[1:]]),
        np.stack([np.repeat(jack[:, :1], readers.shape[0], axis=1), jack[:, 1:]], axis=1),
    )
    rrrc = single.table.set_index("analysis").loc["RRRC"]
    assert rrrc["statistic"] ** 2 == pytest.approx(two.rrrc.loc[0, "f"], rel=1e-10)
    assert rrrc["df"] == pytest.approx(two.rrrc.loc[0, "df2"], rel=1e-10)
    assert rrrc["p"] == pytest.approx(two.rrrc.loc[0, "p"], rel=1e-10)
    # the two-treatment difference is algorithm minus readers too
    assert two.differences.loc[0, "estimate"] == pytest.approx(single.difference)
    assert (two.differences.loc[0, "rrrc_low"], two.differences.loc[0, "rrrc_high"]) == pytest.approx(
        (rrrc["low"], rrrc["high"])
    )


def test_standalone_readers_random_cases_fixed_is_the_paired_t_test() -> None:
    truth, algorithm, readers = _standalone_data(seed=5)
    auc, jack = jackknife_aucs(truth, np.vstack([algorithm, readers]))
    result = standalone_vs_readers(auc[0], auc[1:], jack[:, 0], jack[:, 1:])
    rrfc = result.table.set_index("analysis").loc["RRFC"]
    t = stats.ttest_1samp(auc[0] - auc[1:], 0.0)
    assert rrfc["statistic"] == pytest.approx(t.statistic)
    assert rrfc["p"] == pytest.approx(t.pvalue)
    assert rrfc["df"] == len(auc) - 2


def test_a_better_algorithm_is_significantly_above_the_readers_and_a_worse_one_below() -> None:
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 2, 200)
    readers = truth[None, :] + rng.normal(0, 1.0, (6, 200))
    good = truth + rng.normal(0, 0.3, 200)
    bad = truth + rng.normal(0, 3.0, 200)
    for algorithm, sign in ((good, 1), (bad, -1)):
        auc, jack = jackknife_aucs(truth, np.vstack([algorithm, readers]))
        rrrc = (
            standalone_vs_readers(auc[0], auc[1:], jack[:, 0], jack[:, 1:])
            .table.set_index("analysis")
            .loc["RRRC"]
        )
        assert np.sign(rrrc["low"]) == np.sign(rrrc["high"]) == sign
        assert rrrc["p"] < 0.05


def test_standalone_needs_two_readers() -> None:
    with pytest.raises(ValueError, match=">= 2 readers"):
        standalone_vs_readers(0.8, [0.7], np.zeros(4), np.zeros((4, 1)))

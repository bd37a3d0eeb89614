"""The reader study's evaluation, orchestrated: every rater on the test scans, bootstrap CIs,
agreement and tests, as numbers (tidy) and in the paper's layout (htct.tables.reader_study)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from htct.evaluate.bootstrap import BootstrapResult, bootstrap_metrics
from htct.evaluate.summary import agreement_tables, auc_table, mcnemar_tests, rater_inputs
from htct.tables.reader_study import (  # the paper's layout of the numbers
    AVERAGE_READER,
    EVERY_SCAN_HT,
    agreement_table,
    agreement_tidy,
    ci_table,
    format_tests,
    table2_tidy,
    table3_tidy,
    tests_tidy,
)


def with_reader_average(
    result: BootstrapResult, readers: Sequence[str], name: str = AVERAGE_READER
) -> BootstrapResult:
    """Add a rater whose every metric is the mean over `readers`, in each resample.

    Averaging inside each resample (rather than averaging the readers' intervals) gives the interval
    of the average itself, with the patient-level resampling shared by all readers.

    Args:
        result: bootstrap of models and readers.
        readers: the reader names to average.
        name: the new rater's name.

    Returns:
        A copy of `result` with the extra rater last.
    """
    columns = [result.raters.index(reader) for reader in readers]

    def extend(values: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
        if values is None:
            return None
        with np.errstate(all="ignore"):
            out = {}
            for metric, array in values.items():
                mean = np.nanmean(array[..., columns], axis=-1, keepdims=True)
                out[metric] = np.concatenate([array, mean], axis=-1)
        return out

    return replace(
        result,
        raters=[*result.raters, name],
        estimate=extend(result.estimate),
        replicates=extend(result.replicates),
        jackknife=extend(result.jackknife),
    )


def evaluate_study(
    predictions: Mapping[str, pd.DataFrame],
    readers: pd.DataFrame | None,
    n_bootstrap: int = 2000,
    seed: int = 2026,
    ci_method: str = "percentile",
    reader_threshold: float = 0.5,
) -> dict[str, pd.DataFrame]:
    """All test-set evaluations of the reader study, from prediction tables and the readers sheet.

    The first model is the reference (CTNet in the paper's configuration): table 2 compares it with
    the readers, table 3 with the other models, the tests table gives its DeLong and McNemar
    p-values against every other rater.

    Args:
        predictions: model name -> prediction table (patient_id, scan_id, split, y_true, p_ht, threshold).
        readers: the readers sheet restricted to the test scans, or None.
        n_bootstrap: patient-level bootstrap resamples.
        seed: bootstrap seed.
        ci_method: "percentile" or "bca".
        reader_threshold: a reader calls HT when p_ht >= this.

    The bootstrap also scores the trivial reference rater :data:`EVERY_SCAN_HT` (every test scan
    called HT), which tables 2 and 3 print last; it is in ``metrics`` only, not in the scans, the
    agreement or the tests. The draws depend on the patients and the seed only, so it changes no
    other rater's interval.

    Returns:
        DataFrames: metrics (long, numeric), table2, table3, agreement, tests (pretty, display
        strings) and table2_tidy, table3_tidy, agreement_tidy, tests_tidy (the same as numbers),
        scans (the test scans with each rater's score and call).
    """
    models = list(predictions)
    reference = models[0]
    scans, scores, thresholds = rater_inputs(predictions, readers, "test", reader_threshold)
    reader_names = [rater for rater in scores if rater not in predictions]
    result = bootstrap_metrics(
        scans["y_true"],
        scans["patient_id"],
        scores | {EVERY_SCAN_HT: np.ones(len(scans))},
        thresholds | {EVERY_SCAN_HT: 0.5},
        n_bootstrap,
        seed,
        jackknife=ci_method == "bca",
    )
    if reader_names:
        result = with_reader_average(result, reader_names)
    long = result.ci(ci_method)
    y_true = scans["y_true"].to_numpy()
    # Agreement of the model with the clinicians; without a reader study, among the models.
    agreement_raters = [reference, *reader_names] if reader_names else models
    percent, kappa, fleiss = agreement_tables(
        {r: scores[r] for r in agreement_raters}, thresholds, readers=reader_names or None
    )
    calls = pd.DataFrame({f"call_{r}": (scores[r] >= thresholds[r]).astype(int) for r in scores})
    per_scan = pd.concat([scans, pd.DataFrame({f"p_{r}": s for r, s in scores.items()}), calls], axis=1)
    tidy = {
        "table2": table2_tidy(long, reference, reader_names),
        "table3": table3_tidy(long, models),
        "agreement": agreement_tidy(percent, kappa),
        "tests": tests_tidy(
            auc_table(y_true, scores, reference, patient_ids=scans["patient_id"]),
            mcnemar_tests(y_true, scores, thresholds, reference, patient_ids=scans["patient_id"]),
            reference,
            clustered=True,
        ),
    }
    return {
        "metrics": long,
        "table2": ci_table(tidy["table2"]),
        "table3": ci_table(tidy["table3"]),
        "agreement": agreement_table(percent, kappa),
        "agreement_numeric": pd.concat({"percent_agreement": percent, "cohen_kappa": kappa}),
        "fleiss_kappa": pd.DataFrame({"fleiss_kappa_readers": [fleiss]}),
        "tests": format_tests(tidy["tests"]),
        "scans": per_scan,
    } | {f"{name}_tidy": table for name, table in tidy.items()}

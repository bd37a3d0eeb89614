import sys
import time
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml", set_default=True)


wildcard_constraints:
    model="[a-z0-9]+",
    fold=r"\d+",


SYNTHETIC = bool(config["data"]["synthetic"])

if SYNTHETIC:
    for key, path in (
        ("dicom_dir", "resources/synthetic/dicom"),
        ("clinical", "resources/synthetic/clinical.csv"),
        ("readers", "resources/synthetic/readers.csv"),
    ):
        if config["data"][key] != path:
            raise WorkflowError(
                f"config data.{key} is {config['data'][key]!r} but data.synthetic is true: the synthetic "
                f"cohort is generated at {path!r}; set data.synthetic: false to use your own data."
            )


# htct (src/) for the sheet checks and the error prefix; scripts put it on sys.path themselves.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from htct.errors import ERROR_PREFIX, HTCTInputError


def validate_sheets():
    """Validate the input sheets of a real cohort before any job runs (one line per problem).

    Uses htct.sheets, which checks each row against schemas/*.schema.yaml (with the numeric
    columns parsed first, so the bad row is the one named) and the rules across rows (duplicates).
    """
    from htct.sheets import load_clinical, load_readers

    for key, load in (("clinical", load_clinical), ("readers", load_readers)):
        path = config["data"][key]
        if path and Path(path).is_file():
            try:
                load(path)
            except HTCTInputError as error:
                raise WorkflowError(f"{ERROR_PREFIX} {error}") from None


if not SYNTHETIC:
    validate_sheets()


def lesion_masks_configured():
    return bool(config["data"]["lesion_masks"])


def lesion_masks_input():
    """The lesion-mask folder, or the synthetic truth folder (a rule output) that contains it."""
    if SYNTHETIC:
        return "resources/synthetic/truth"
    return config["data"]["lesion_masks"]


def all_outputs():
    """Every final target of the workflow: the stages that exist so far."""
    targets = [
        "results/qc/series.tsv",
        "results/qc/scans.tsv",
        "results/arrays/volumes.npy",
        "results/split/split.tsv",
        "results/tables/table1.csv",
        "results/tables/table1.md",
        "results/tables/table1.tex",
    ]
    if lesion_masks_configured():
        targets.append("results/arrays/lesion_mask.npy")
    targets += expand(
        "results/predictions/{model}.tsv", model=config["train"]["models"]
    )
    targets += expand(
        "results/tables/{table}.{ext}",
        table=["table2", "table3", "agreement", "tests"],
        ext=["csv", "md", "tex"],
    )
    targets += ["results/numbers.json", "results/numbers.md"]
    targets += expand(
        "results/figures/{figure}.{ext}",
        figure=[
            "fig1_pipeline",
            "fig2_confusion",
            "supp_fig4_roc",
            "calibration",
            "decision_curve",
        ],
        ext=["pdf", "png"],
    )
    if "ctnet" in config["train"]["models"]:
        targets += expand("results/figures/fig3_attention.{ext}", ext=["pdf", "png"])
        targets += expand(
            "results/attribution/{table}.tsv",
            table=[
                "localisation",
                "uses_infarct",
                "sanity",
                "faithfulness",
                "verdicts",
            ],
        )
        targets += expand("results/tables/attribution.{ext}", ext=["csv", "md", "tex"])
    return targets


def split_file():
    """An existing split to reuse (config split.file), or nothing: the split is then drawn."""
    return config["split"]["file"] or []


def readers_input():
    """The readers sheet, or nothing when the cohort has no reader study (data.readers empty)."""
    return config["data"]["readers"] or []


def lesion_mask_array():
    """The cropped lesion masks, when lesion masks are known (synthetic cohort)."""
    return "results/arrays/lesion_mask.npy" if lesion_masks_configured() else []


def truth_scans():
    """The synthetic cohort's per-scan truth (lesion visibility), used to pick figure 3's cases."""
    if SYNTHETIC:
        return "resources/synthetic/truth"
    return config["data"]["truth"] or []


def print_input_errors(since):
    """Print the one-line input errors (ERROR_PREFIX) that this run's jobs logged."""
    for log in sorted(Path("logs").rglob("*.log")):
        if log.stat().st_mtime >= since:
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith(ERROR_PREFIX):
                    print(f"{line} (log: {log})", file=sys.stderr)


WORKFLOW_START = time.time()


onerror:
    print_input_errors(WORKFLOW_START)


def k_folds():
    """The number of cross-validation folds (config split.k_folds); below 2 a single split."""
    return int(config["split"]["k_folds"])


def model_weights(model):
    """The weights of a trained model folder results/models/{model}: its weights.pt (rule train), or
    after a k-fold training each fold's fold{k}/weights.pt (rule train_fold). The folder's
    threshold.json, from rule train or rule merge_folds, exists in both modes."""
    if k_folds() < 2:
        return f"results/models/{model}/weights.pt"
    return expand(
        "results/models/{model}/fold{fold}/weights.pt",
        model=model,
        fold=range(k_folds()),
    )


def comparison_fold():
    """The fold the skull-strip comparison model is trained on: a k-fold split has no validation
    part of its own, so it uses fold 0's (a single model, not an ensemble); -1 for a single split.
    """
    return 0 if k_folds() >= 2 else -1


INPUT_KINDS = ["full_head", "skull_stripped"]
COUNTERFACTUALS = "results/evaluation/counterfactuals.tsv"


def configured_input_kind():
    """The configured CTNet's input kind; the skull-strip comparison CTNet has the other one."""
    return "skull_stripped" if config["preprocess"]["skull_strip"] else "full_head"


def attribution_variant_inputs(wildcards):
    """Model folder (its threshold.json), weights and arrays of one CTNet variant of the attribution
    stage: the configured CTNet (results/models/ctnet, a fold ensemble after a k-fold training)
    or the skull-strip comparison CTNet, by input kind."""
    if wildcards.input_kind == configured_input_kind():
        return {
            "model": "results/models/ctnet/threshold.json",
            "weights": model_weights("ctnet"),
            "volumes": "results/arrays/volumes.npy",
            "brain_mask": "results/arrays/brain_mask.npy",
            "index": "results/arrays/index.tsv",
        }
    return {
        "model": "results/skull_strip_comparison/models/ctnet/threshold.json",
        "weights": "results/skull_strip_comparison/models/ctnet/weights.pt",
        "volumes": "results/skull_strip_comparison/arrays/volumes.npy",
        "brain_mask": "results/skull_strip_comparison/arrays/brain_mask.npy",
        "index": "results/skull_strip_comparison/arrays/index.tsv",
    }


def counterfactuals_input(wildcards):
    """The counterfactual table (infarct removed from the synthetic scans), an optional input of the
    attribution summary: used when a rule of the workflow writes it or it exists; otherwise the
    counterfactual test is "undecided"."""
    produced = any(COUNTERFACTUALS in map(str, rule.output) for rule in workflow.rules)
    return COUNTERFACTUALS if produced or Path(COUNTERFACTUALS).is_file() else []


def comparison_preprocess():
    """Preprocessing of the skull-strip comparison: as configured, with skull stripping toggled."""
    return {
        **config["preprocess"],
        "skull_strip": not config["preprocess"]["skull_strip"],
    }

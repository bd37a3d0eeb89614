import sys
import time
from pathlib import Path

import yaml
from snakemake.utils import validate

# htct (src/) for the config and sheet checks; scripts put it on sys.path themselves.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from htct.config import resolve_data, unknown_keys, unknown_models
from htct.errors import ERROR_PREFIX, HTCTInputError
from htct.repeats import run_holds, run_targets

CONFIG_SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"


def input_error(*messages):
    """Print one HTCT-ERROR line per message and return the exit that ends Snakemake with them
    (a WorkflowError would add the file and line of this function, which is not the user's).
    """
    for message in messages:
        print(f"{ERROR_PREFIX} {message}", file=sys.stderr)
    return SystemExit(1)


def check_config():
    """Validate the config before any job runs: unknown keys (with the closest valid key), then
    values against the schema (which sets the defaults), then the data paths (htct.config).
    """
    problems = unknown_keys(config, yaml.safe_load(CONFIG_SCHEMA.read_text()))
    if problems:
        raise input_error(*problems)
    validate(config, schema=str(CONFIG_SCHEMA), set_default=True)
    problems = unknown_models(config["train"])
    if problems:
        raise input_error(*problems)
    try:
        config["data"] = resolve_data(
            config["data"], Path.cwd(), config["split"]["file"]
        )
    except HTCTInputError as error:
        raise input_error(error) from None


check_config()


wildcard_constraints:
    model="[a-z0-9]+",
    fold=r"\d+",
    factor="infarct|hyperdense_artery|leukoaraiosis",
    input="full_head|skull_stripped",


SYNTHETIC = bool(config["data"]["synthetic"])

from htct.names import display_name
from htct.shards import shard_mem_mb, shard_runtime


def validate_sheets():
    """Validate the input sheets of a real cohort before any job runs (one line per problem).

    Uses htct.sheets, which checks each row against schemas/*.schema.yaml (with the numeric
    columns parsed first, so the bad row is the one named) and the rules across rows (duplicates).
    """
    from htct.sheets import load_clinical, load_readers

    for key, load in (("clinical", load_clinical), ("readers", load_readers)):
        path = config["data"][key]
        if path:
            try:
                load(path)
            except HTCTInputError as error:
                raise input_error(error) from None


if not SYNTHETIC:
    validate_sheets()


def lesion_masks_configured():
    return bool(config["data"]["lesion_masks"])


def lesion_masks_input():
    """The lesion-mask folder, or the synthetic truth folder (a rule output) that contains it; no
    input at all when there are no masks (an empty path makes Snakemake warn on every run).
    """
    if SYNTHETIC:
        return "resources/synthetic/truth"
    return config["data"]["lesion_masks"] or []


def all_outputs():
    """Every final target of the workflow: the stages that exist so far."""
    targets = [
        "results/qc/series.tsv",
        "results/qc/scans.tsv",
        "results/arrays/volumes.npy",
        "results/split/split.tsv",
    ]
    if lesion_masks_configured():
        targets.append("results/arrays/lesion_mask.npy")
    targets += expand(
        "results/predictions/{model}.tsv", model=config["train"]["models"]
    )
    targets += expand(
        "results/tables/{table}.{ext}",
        table=["table1", "table2", "table3", "agreement", "tests"],
        ext=TABLE_FORMATS,
    )
    targets += ["results/numbers.json", "results/numbers.md", "results/numbers.html"]
    targets += expand(
        "results/figures/{figure}.{ext}", figure=figures(), ext=["pdf", "png"]
    )
    targets += report_pages()
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
        targets += expand(
            "results/tables/{table}.{ext}",
            table=["image_clinical", "image_clinical_claims", "treatment"],
            ext=TABLE_FORMATS,
        )
        targets += expand(
            "results/tables/treatment_interaction.{ext}", ext=TABLE_FORMATS
        )
    if SYNTHETIC:
        targets += ["results/evaluation/counterfactuals.tsv"]
        targets += expand(
            "results/tables/counterfactuals.{ext}", ext=["csv", "md", "tex"]
        )
    targets += expand(
        "results/paper/{table}.{ext}",
        table=["comparison", "claims"],
        ext=["csv", "md", "html"],
    )
    targets += [
        "results/paper/audit.md",
        "results/paper/audit.html",
        "results/paper/mrmc.tsv",
    ]
    targets += expand("results/paper/table{n}_layout.html", n=[1, 2, 3])
    targets += expand(
        "results/manuscript/{file}",
        file=["report.html", "report.pdf", "tripod_ai.md", "tripod_ai.html"],
    )
    targets += run_targets(config["repeats"])  # rules/repeats.smk
    return targets


TABLE_FORMATS = ["csv", "md", "tex", "html"]
"""htct.tables.write_table's files: tidy CSV, Markdown, LaTeX, and the HTML the report shows."""

# The figures of the report: stem under results/figures -> (label, what it shows, page title; "" takes
# the figure's own title). The label orders the report's list: Figures 1-3, the paper's supplementary
# figure 4, the additions.
REPORT_FIGURES = {
    "fig1_pipeline": (
        "Figure 1",
        "Workflow: the analysis rules and their data flow",
        "Figure 1. Workflow: the analysis rules and their data flow",
    ),
    "fig2_confusion": (
        "Figure 2",
        "Confusion matrices of CTNet and the clinicians",
        "Figure 2. Confusion matrices of CTNet and the clinicians",
    ),
    "fig3_attention": (
        "Figure 3",
        "Attribution maps of CTNet (the method that passes the most tests, named on the page)",
        "",  # the figure's own title, which names the method drawn (chosen when drawn)
    ),
    "supp_fig4_roc": (
        "Figure 4 (suppl.)",
        "ROC curves and the clinicians' operating points",
        "Supplementary Figure 4. ROC curves and the clinicians' operating points",
    ),
    "calibration": (
        "Figure A1",
        "Calibration of the predicted HT probabilities",
        "Additional Figure A1. Calibration of the predicted HT probabilities",
    ),
    "decision_curve": (
        "Figure A2",
        "Decision curves (net benefit)",
        "Additional Figure A2. Decision curves (net benefit)",
    ),
    "agreement_heatmap": (
        "Figure A3",
        "Agreement of the HT calls between the raters",
        "Additional Figure A3. Agreement of the HT calls between the raters",
    ),
}


FIG1_OMITTED_RULES = [
    "all",
    "fig1_pipeline",
    "figure_page",
    "training_page",
    "qc_tables",
    "front_page",
]
"""Rules figure 1 leaves out: the target `all` and the rules that only present results (the
figure shows the method's data flow)."""


def figures():
    """The figures this run makes: fig. 3 needs CTNet among the models, the agreement figure a
    reader study."""
    left_out = set()
    if "ctnet" not in config["train"]["models"]:
        left_out.add("fig3_attention")
    if not config["data"]["readers"]:
        left_out.add("agreement_heatmap")
    return [figure for figure in REPORT_FIGURES if figure not in left_out]


def report_pages():
    """The HTML pages of rules/report.smk: one per figure and per model, QC tables, front page."""
    return [
        *expand("results/report/figures/{figure}.html", figure=figures()),
        *expand(
            "results/report/training/{model}.html", model=config["train"]["models"]
        ),
        "results/qc/series.html",
        "results/qc/patients.html",
        "results/report/workflow.rst",
    ]


def figure_caption(wildcards):
    """A figure page's caption: report/{figure}.rst; fig. 3 without lesion truth (an own cohort)
    shows other cases and says so (report/fig3_attention_by_risk.rst)."""
    if wildcards.figure == "fig3_attention" and not truth_scans():
        return workflow.source_path("../report/fig3_attention_by_risk.rst")
    return workflow.source_path(f"../report/{wildcards.figure}.rst")


def figure_title(wildcards):
    return REPORT_FIGURES[wildcards.figure][2]


def figure_labels(wildcards):
    """The report's columns for a figure page: its number and what it shows."""
    label, shows, _ = REPORT_FIGURES[wildcards.figure]
    return {"figure": label, "shows": shows}


def training_curves(wildcards, ext):
    """A model's training curve(s): one per fold after a k-fold training."""
    if k_folds() < 2:
        return [f"results/models/{wildcards.model}/training_curve.{ext}"]
    return expand(
        "results/models/{model}/fold{fold}/training_curve.{ext}",
        model=wildcards.model,
        fold=range(k_folds()),
        ext=ext,
    )


def training_curves_png(wildcards):
    return training_curves(wildcards, "png")


def training_curves_pdf(wildcards):
    return training_curves(wildcards, "pdf")


def training_headings(wildcards):
    """Headings of a training page's figures: the folds, or none for a single split."""
    return [f"Fold {fold}" for fold in range(k_folds())] if k_folds() >= 2 else []


def training_title(wildcards):
    return f"Training of {display_name(wildcards.model)}"


def training_labels(wildcards):
    return {
        "model": display_name(wildcards.model),
        "shows": "Loss and validation AUC per epoch"
        + (f", {k_folds()} folds" if k_folds() >= 2 else ""),
    }


def report_front_page():
    """The report's front page: this run's (rule front_page, with the cohort statement) once it
    exists, else the template report/workflow.rst."""
    generated = Path("results/report/workflow.rst")
    return str(generated.resolve()) if generated.is_file() else "report/workflow.rst"


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


PATIENTS_QC = "results/qc/patients.tsv"


def print_excluded_patients():
    """One closing line on the excluded patients of results/qc/patients.tsv (when this run has it):
    how many, and where the reasons are; otherwise only the job logs would say."""
    import csv

    path = Path(PATIENTS_QC)
    if not path.is_file():
        return
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    excluded = [row["patient_id"] for row in rows if row["status"] == "excluded"]
    if excluded:
        named = ", ".join(excluded[:10]) + (", ..." if len(excluded) > 10 else "")
        print(
            f"HTCT: {len(excluded)} of {len(rows)} patient(s) of the clinical sheet excluded "
            f"({named}); the reasons are in {PATIENTS_QC}",
            file=sys.stderr,
        )
    else:
        print(
            f"HTCT: all {len(rows)} patient(s) of the clinical sheet included ({PATIENTS_QC})",
            file=sys.stderr,
        )


onsuccess:
    print_excluded_patients()


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


def training_threads():
    """Threads per training job: the cores shared out among the trainings that can run at the same
    time (every model, and the skull-strip comparison CTNet; folds multiply them), at least one.

    On 2 cores that is one thread each, two trainings at once: on this CPU two 1-thread trainings
    give 1.4-1.7x the scans/s of one 2-thread training at 48 px (benchmarks/README.md), and the
    four trainings of the default run pack into two pairs.
    """
    n_trainings = len(config["train"]["models"]) + (
        "ctnet" in config["train"]["models"]
    )
    n_trainings *= max(1, k_folds())
    # No --cores (a --rulegraph or --report call) runs no job: any count serves.
    cores = workflow.resource_settings.cores or 1
    return max(1, int(cores) // n_trainings)


def comparison_fold():
    """The fold the skull-strip comparison model is trained on: a k-fold split has no validation
    part of its own, so it uses fold 0's (a single model, not an ensemble); -1 for a single split.
    """
    return 0 if k_folds() >= 2 else -1


IMAGE_FACTORS = ["infarct", "hyperdense_artery", "leukoaraiosis"]


def input_kind(skull_strip):
    """The name of an input kind in counterfactual outputs: skull_stripped or full_head."""
    return "skull_stripped" if skull_strip else "full_head"


def configured_input_kind():
    """The configured CTNet's input kind; the skull-strip comparison CTNet has the other one."""
    return input_kind(config["preprocess"]["skull_strip"])


def arrays_of(kind):
    """The arrays folder of an input kind: the configured preprocessing's, or the skull-strip
    comparison's."""
    if kind == configured_input_kind():
        return "results/arrays"
    return "results/skull_strip_comparison/arrays"


def counterfactual_variants():
    """The trained models the counterfactual test asks: every configured model on the configured
    input, and the skull-strip comparison CTNet on the other input kind (when CTNet is trained).
    """
    configured = configured_input_kind()
    variants = [
        {
            "model": model,
            "input": configured,
            "model_dir": f"results/models/{model}",
            "arrays": "results/arrays",
        }
        for model in config["train"]["models"]
    ]
    if "ctnet" in config["train"]["models"]:
        variants.append(
            {
                "model": "ctnet",
                "input": input_kind(not config["preprocess"]["skull_strip"]),
                "model_dir": "results/skull_strip_comparison/models/ctnet",
                "arrays": "results/skull_strip_comparison/arrays",
            }
        )
    return variants


def counterfactual_model_inputs():
    """Files of every counterfactual variant: its model folder's threshold.json and weights, and
    the arrays it was trained on."""
    files = []
    for variant in counterfactual_variants():
        if variant["model_dir"].startswith("results/models/"):
            files += [f"{variant['model_dir']}/threshold.json"]
            files += as_list(model_weights(variant["model"]))
        else:
            files += [
                f"{variant['model_dir']}/threshold.json",
                f"{variant['model_dir']}/weights.pt",
            ]
        files += [f"{variant['arrays']}/volumes.npy", f"{variant['arrays']}/index.tsv"]
    return files


def counterfactual_arrays_all():
    """The counterfactual arrays of every factor for every input kind a variant was trained on."""
    kinds = sorted({variant["input"] for variant in counterfactual_variants()})
    return expand(
        "results/counterfactuals/{factor}/{input}/volumes.npy",
        factor=IMAGE_FACTORS,
        input=kinds,
    )


def counterfactual_reference(name):
    """Input function: a file of the arrays whose crops the counterfactual arrays of {input} repeat."""

    def reference(wildcards):
        return f"{arrays_of(wildcards.input)}/{name}"

    return reference


def as_list(value):
    """A path or a list of paths, as a list."""
    return [value] if isinstance(value, str) else list(value)


INPUT_KINDS = ["full_head", "skull_stripped"]
COUNTERFACTUALS = "results/evaluation/counterfactuals.tsv"


def attribution_variant_inputs(wildcards):
    """Model folder (its threshold.json), weights and arrays of one CTNet variant of the attribution
    stage: the configured CTNet (results/models/ctnet, a fold ensemble after a k-fold training)
    or the skull-strip comparison CTNet, by input kind."""
    arrays = arrays_of(wildcards.input_kind)
    files = {
        "volumes": f"{arrays}/volumes.npy",
        "brain_mask": f"{arrays}/brain_mask.npy",
        "index": f"{arrays}/index.tsv",
    }
    if wildcards.input_kind == configured_input_kind():
        return {
            "model": "results/models/ctnet/threshold.json",
            "weights": model_weights("ctnet"),
            **files,
        }
    return {
        "model": "results/skull_strip_comparison/models/ctnet/threshold.json",
        "weights": "results/skull_strip_comparison/models/ctnet/weights.pt",
        **files,
    }


def counterfactuals_input(wildcards):
    """The counterfactual table (infarct removed from the synthetic scans), an input of the
    attribution summary on the synthetic cohort only: an own cohort has no known image factors to
    remove, and its counterfactual test is "undecided"."""
    return COUNTERFACTUALS if SYNTHETIC else []


def comparison_preprocess():
    """Preprocessing of the skull-strip comparison: as configured, with skull stripping toggled."""
    return {
        **config["preprocess"],
        "skull_strip": not config["preprocess"]["skull_strip"],
    }


# The reproduction report (rules/manuscript.smk): the files it reads and the rules that make them.
from htct.manuscript import (
    sources as manuscript_sources,
)  # src/ is on sys.path (top of this file)


def made_by_workflow(path):
    """The rule that writes `path` in this workflow's DAG, or None (an optional stage not included)."""
    for candidate in workflow.rules:
        if candidate.name not in (
            "all",
            "manuscript",
            "tripod_ai",
        ) and candidate.is_producer(path):
            return candidate.name
    return None


def manuscript_files():
    """Every file the report reads, with the job that makes it; the stages this run has (attribution with
    CTNet, counterfactuals on the synthetic cohort, repeats where the workflow has that stage).
    """
    models = config["train"]["models"]
    # the rules of these stages exist in every run; all_outputs() asks for them only here
    optional = {
        manuscript_sources.COUNTERFACTUALS: SYNTHETIC,
        manuscript_sources.ATTRIBUTION: "ctnet" in models,
    }
    wanted = [path for path in manuscript_sources.RULES if optional.get(path, True)]
    for model in models:
        files = manuscript_sources.model_files(model, k_folds())
        wanted += [files["threshold"], *files["epochs"]]
    made_by = {path: made_by_workflow(path) for path in wanted}
    return {path: name for path, name in made_by.items() if name}


def tripod_outputs():
    """The outputs that the TRIPOD+AI items name and this workflow makes; an item whose output no
    rule makes is reported by rule tripod_ai as missing (HTCT-ERROR)."""
    items = yaml.safe_load(
        Path(workflow.basedir, "resources", "tripod_ai.yaml").read_text()
    )
    reference = config["train"]["models"][0]
    paths = {
        path.format(reference=reference)
        for item in items["items"] + items["abstract_items"]
        for path in item.get("outputs", [])
    }
    return sorted(
        path for path in paths if made_by_workflow(path) or path.endswith("report.html")
    )


def cohort_patients():
    """Patients of the cohort before any job runs (shard resources): the synthetic design's count
    or the clinical sheet's rows."""
    if SYNTHETIC:
        return config["synthetic"]["n_patients"]
    from htct.sheets import load_clinical

    return len(load_clinical(config["data"]["clinical"]))

# The reproduction report (docs/manuscript.md): Methods and Results written by the run from a
# Jinja2 template, every number read from an output below and linked to it, as HTML and PDF; and the
# TRIPOD+AI checklist with, per item, the output or report section of this run that addresses it.

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from htct.manuscript import sources as manuscript_sources


localrules:
    manuscript,
    tripod_ai,


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
    """Output file -> rule for every file the report reads: the stages this run has (attribution with
    CTNet, counterfactuals on the synthetic cohort, repeats where the workflow has that stage).
    """
    models = config["train"]["models"]
    wanted = list(manuscript_sources.RULES)
    for model in models:
        files = manuscript_sources.model_files(model, k_folds())
        wanted += [files["threshold"], *files["epochs"]]
    return {path: rule for path in wanted if (rule := made_by_workflow(path))}


rule manuscript:
    input:
        lambda wildcards: list(manuscript_files()),
    output:
        html=report(
            "results/manuscript/report.html",
            caption="../report/manuscript.rst",
            category="Reproduction",
            labels={
                "item": "Reproduction report",
                "shows": "Methods and Results written by the run, every number linked to its file",
            },
        ),
        pdf="results/manuscript/report.pdf",
    log:
        "logs/manuscript/report.log",
    conda:
        "../envs/manuscript.yaml"
    params:
        files=lambda wildcards: manuscript_files(),
        models=config["train"]["models"],
        k_folds=k_folds(),
        synthetic=SYNTHETIC,
    script:
        "../scripts/manuscript.py"


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


rule tripod_ai:
    input:
        checklist=workflow.source_path("../resources/tripod_ai.yaml"),
        report="results/manuscript/report.html",
        files=lambda wildcards: tripod_outputs(),
    output:
        md="results/manuscript/tripod_ai.md",
        html=report(
            "results/manuscript/tripod_ai.html",
            caption="../report/tripod_ai.rst",
            category="Reproduction",
            labels={
                "item": "TRIPOD+AI checklist",
                "shows": "Each TRIPOD+AI item with the output of this run that addresses it",
            },
        ),
    log:
        "logs/manuscript/tripod_ai.log",
    conda:
        "../envs/manuscript.yaml"
    params:
        reference=config["train"]["models"][0],
        synthetic=SYNTHETIC,
    script:
        "../scripts/tripod_ai.py"

# The reproduction report (docs/manuscript.md): Methods and Results written by the run from a
# Jinja2 template, every number read from an output below and linked to it, as HTML and PDF; and the
# TRIPOD+AI checklist with, per item, the output or report section of this run that addresses it.
# Input functions: manuscript_files(), tripod_outputs() in rules/common.smk.


localrules:
    manuscript,
    tripod_ai,


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

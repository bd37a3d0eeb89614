# The report's own pages (docs/report.md): every figure with its caption under it and its PDF as a
# download, every model's training curves, the quality-control tables as HTML, and the front page
# with the statement of the cohort this run used. Tables write their HTML themselves (write_table).


localrules:
    figure_page,
    training_page,
    qc_tables,
    front_page,


rule figure_page:
    input:
        png=["results/figures/{figure}.png"],
        pdf=["results/figures/{figure}.pdf"],
        caption=figure_caption,
    output:
        page=report(
            "results/report/figures/{figure}.html",
            caption="../report/figure_page.rst",
            category="Figures",
            labels=figure_labels,
        ),
    log:
        "logs/report/figure_{figure}.log",
    wildcard_constraints:
        figure="|".join(REPORT_FIGURES),
    conda:
        "../envs/plots.yaml"
    params:
        title=figure_title,
        headings=[],
        synthetic=SYNTHETIC,
    script:
        "../scripts/report_page.py"


rule training_page:
    input:
        png=training_curves_png,
        pdf=training_curves_pdf,
        caption=workflow.source_path("../report/training_curve.rst"),
    output:
        page=report(
            "results/report/training/{model}.html",
            caption="../report/training_page.rst",
            category="Training",
            labels=training_labels,
        ),
    log:
        "logs/report/training_{model}.log",
    wildcard_constraints:
        model="|".join(config["train"]["models"]),
    conda:
        "../envs/plots.yaml"
    params:
        title=training_title,
        headings=training_headings,
        synthetic=SYNTHETIC,
    script:
        "../scripts/report_page.py"


rule qc_tables:
    input:
        series="results/qc/series.tsv",
        patients="results/qc/patients.tsv",
    output:
        series=report(
            "results/qc/series.html",
            caption="../report/qc_series.rst",
            category="Quality control",
            labels={
                "table": "DICOM series",
                "shows": "Every series found, kept or excluded",
            },
        ),
        patients=report(
            "results/qc/patients.html",
            caption="../report/qc_patients.rst",
            category="Quality control",
            labels={
                "table": "Patients",
                "shows": "Every patient, included or excluded",
            },
        ),
    log:
        "logs/report/qc_tables.log",
    conda:
        "../envs/stats.yaml"
    params:
        synthetic=SYNTHETIC,
    script:
        "../scripts/qc_tables.py"


rule front_page:
    input:
        template=workflow.source_path("../report/workflow.rst"),
        clinical=config["data"]["clinical"],
        patients="results/qc/patients.tsv",
        scans="results/split/scans.tsv",
        readers=readers_input(),
    output:
        "results/report/workflow.rst",
    log:
        "logs/report/front_page.log",
    conda:
        "../envs/stats.yaml"
    params:
        data=config["data"],
        synthetic=config["synthetic"],
    script:
        "../scripts/front_page.py"

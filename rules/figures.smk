localrules:
    figures,
    agreement_figure,
    fig1_pipeline,


rule figures:
    input:
        test_scans="results/evaluation/test_scans.tsv",
    output:
        fig2=multiext("results/figures/fig2_confusion", ".pdf", ".png"),
        roc=multiext("results/figures/supp_fig4_roc", ".pdf", ".png"),
        calibration=multiext("results/figures/calibration", ".pdf", ".png"),
        decision_curve=multiext("results/figures/decision_curve", ".pdf", ".png"),
    log:
        "logs/figures.log",
    conda:
        "../envs/plots.yaml"
    params:
        models=config["train"]["models"],
        evaluate=config["evaluate"],
        synthetic=SYNTHETIC,
    script:
        "../scripts/figures.py"


rule agreement_figure:
    input:
        agreement="results/evaluation/agreement.tsv",
    output:
        figure=multiext("results/figures/agreement_heatmap", ".pdf", ".png"),
    log:
        "logs/agreement_figure.log",
    conda:
        "../envs/plots.yaml"
    params:
        synthetic=SYNTHETIC,
    script:
        "../scripts/agreement_figure.py"


rule fig1_pipeline:
    output:
        dot="results/figures/rulegraph.dot",
        fig1=multiext("results/figures/fig1_pipeline", ".pdf", ".png"),
    log:
        "logs/fig1_pipeline.log",
    conda:
        "../envs/plots.yaml"
    params:
        python=sys.executable,
        snakefile=workflow.main_snakefile,
        config=config,
        synthetic=SYNTHETIC,
        omit=FIG1_OMITTED_RULES,
    script:
        "../scripts/fig1_pipeline.py"

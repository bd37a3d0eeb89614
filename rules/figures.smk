localrules:
    figures,
    fig1_pipeline,


rule figures:
    input:
        test_scans="results/evaluation/test_scans.tsv",
    output:
        fig2=report(
            multiext("results/figures/fig2_confusion", ".pdf", ".png"),
            caption="../report/fig2_confusion.rst",
            category="Figures",
        ),
        roc=report(
            multiext("results/figures/supp_fig4_roc", ".pdf", ".png"),
            caption="../report/supp_fig4_roc.rst",
            category="Figures",
        ),
        calibration=report(
            multiext("results/figures/calibration", ".pdf", ".png"),
            caption="../report/calibration.rst",
            category="Figures",
        ),
        decision_curve=report(
            multiext("results/figures/decision_curve", ".pdf", ".png"),
            caption="../report/decision_curve.rst",
            category="Figures",
        ),
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


rule fig1_pipeline:
    output:
        dot="results/figures/rulegraph.dot",
        fig1=report(
            multiext("results/figures/fig1_pipeline", ".pdf", ".png"),
            caption="../report/fig1_pipeline.rst",
            category="Figures",
        ),
    log:
        "logs/fig1_pipeline.log",
    conda:
        "../envs/plots.yaml"
    params:
        python=sys.executable,
        snakefile=workflow.main_snakefile,
        config=config,
        synthetic=SYNTHETIC,
    script:
        "../scripts/fig1_pipeline.py"

# The clinical variables (issue 24; htct.clinical, docs/models.md "Clinical variables"): the
# clinical-only model, CTNet's late fusion with the clinical variables, and the table of image and
# clinical information with the "adds to" claims and the results by treatment. No arrays, no torch.


localrules:
    train_clinical,
    fuse_clinical,
    image_clinical,


rule train_clinical:
    input:
        clinical=config["data"]["clinical"],
        split="results/split/split.tsv",
        scans="results/split/scans.tsv",
    output:
        predictions="results/predictions/clinical.tsv",
        threshold="results/models/clinical/threshold.json",
        coefficients="results/models/clinical/coefficients.tsv",
    log:
        "logs/train/clinical.log",
    conda:
        "../envs/stats.yaml"
    params:
        c=config["clinical"]["c"],
        synthetic=SYNTHETIC,
    script:
        "../scripts/train_clinical.py"


rule fuse_clinical:
    input:
        clinical=config["data"]["clinical"],
        ctnet="results/predictions/ctnet.tsv",
        clinical_predictions="results/predictions/clinical.tsv",
    output:
        predictions="results/predictions/ctnet_clinical.tsv",
        threshold="results/models/ctnet_clinical/threshold.json",
        coefficients="results/models/ctnet_clinical/coefficients.tsv",
        selection="results/models/ctnet_clinical/selection.tsv",
    log:
        "logs/train/ctnet_clinical.log",
    conda:
        "../envs/stats.yaml"
    params:
        fusion=config["clinical"],
        synthetic=SYNTHETIC,
    script:
        "../scripts/fuse_clinical.py"


rule image_clinical:
    input:
        clinical=config["data"]["clinical"],
        predictions=expand(
            "results/predictions/{model}.tsv",
            model=["clinical", "ctnet", "ctnet_clinical"],
        ),
        readers=readers_input(),
        scans="results/split/scans.tsv",
        truth=truth_scans(),
    output:
        metrics_tsv="results/evaluation/image_clinical.tsv",
        claims_tsv="results/evaluation/image_clinical_claims.tsv",
        treatment_tsv="results/evaluation/treatment.tsv",
        interaction_tsv="results/evaluation/treatment_interaction.tsv",
        table=report(
            "results/tables/image_clinical.html",
            caption="../report/image_clinical.rst",
            category="Tables",
            labels={
                "table": "Table A1",
                "shows": "Image and clinical information: clinical model, CTNet, fusion, ceilings",
            },
        ),
        table_files=multiext("results/tables/image_clinical", ".csv", ".md", ".tex"),
        claims=report(
            "results/tables/image_clinical_claims.html",
            caption="../report/image_clinical_claims.rst",
            category="Tables",
            labels={
                "table": "Table A2",
                "shows": "Does the scan add to the chart, and the chart to the scan?",
            },
        ),
        claims_files=multiext(
            "results/tables/image_clinical_claims", ".csv", ".md", ".tex"
        ),
        treatment=report(
            "results/tables/treatment.html",
            caption="../report/treatment.rst",
            category="Tables",
            labels={
                "table": "Table A3",
                "shows": "CTNet, the clinicians and the clinical model by treatment",
            },
        ),
        treatment_files=multiext("results/tables/treatment", ".csv", ".md", ".tex"),
        interaction=report(
            "results/tables/treatment_interaction.html",
            caption="../report/treatment_interaction.rst",
            category="Tables",
            labels={
                "table": "Table A4",
                "shows": "Does the AUC differ between treatment groups?",
            },
        ),
        interaction_files=multiext(
            "results/tables/treatment_interaction", ".csv", ".md", ".tex"
        ),
    log:
        "logs/image_clinical.log",
    conda:
        "../envs/stats.yaml"
    params:
        evaluate=config["evaluate"],
        ceiling_threshold=config["paper"]["oracle_threshold"],
        synthetic=SYNTHETIC,
    script:
        "../scripts/image_clinical.py"

# ctnet-ht: from raw head-CT DICOM to the tables and figures of Zhang et al. (Front. Neurosci. 2026).
# This file only wires the workflow; stages live in rules/, logic in the htct package (src/htct/).

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/synth.smk"
include: "rules/convert.smk"
include: "rules/preprocess.smk"
include: "rules/split.smk"
include: "rules/tables.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/clinical.smk"
include: "rules/repeats.smk"
include: "rules/figures.smk"
include: "rules/attribution.smk"
include: "rules/counterfactual.smk"
include: "rules/paper.smk"
include: "rules/report.smk"
include: "rules/manuscript.smk"


# The front page states the cohort of this run (rule front_page) once the run has made it.
report: report_front_page()


rule all:
    default_target: True
    input:
        all_outputs(),


# The full set of repeats (repeats.full_splits x full_seeds; rules/repeats.smk): snakemake --cores all repeats
rule repeats:
    input:
        expand("results/repeats/full/{name}", name=SPREAD_FILES),


# The leakage sensitivity analysis: the default run's repeats split by image, as the paper's probably was
rule image_split:
    input:
        "results/repeats/run/leakage.html",

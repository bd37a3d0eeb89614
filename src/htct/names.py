"""Display names of the registered models, shared by figures, report pages and the workflow's labels.

The model registry's (:func:`htct.models.registry.display_name`, torch-free: rules/common.smk
imports it while Snakemake parses the workflow); any other key (a reader) is shown as given.
"""

from htct.models.registry import display_name

__all__ = ["display_name"]

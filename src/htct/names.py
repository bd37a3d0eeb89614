"""Display names of the registered models and of their input kinds, shared by figures, tables,
report pages and the workflow's labels.

The model registry's (:func:`htct.models.registry.display_name`, torch-free: rules/common.smk
imports it while Snakemake parses the workflow); any other key (a reader) is shown as given.
"""

from htct.models.registry import display_name

__all__ = ["INPUT_LABELS", "display_name", "variant_label"]

# The preprocessing a model variant was trained on (results/arrays vs the skull-strip comparison).
INPUT_LABELS = {"full_head": "full head", "skull_stripped": "skull-stripped"}


def variant_label(model: str, input_kind: str) -> str:
    """A trained variant as tables and figures name it, e.g. "CTNet (full head input)"."""
    return f"{display_name(model)} ({INPUT_LABELS.get(input_kind, input_kind)} input)"

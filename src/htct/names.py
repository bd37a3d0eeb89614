"""Display names of the registered models, shared by figures, report pages and the workflow's labels.

Kept free of heavy imports: rules/common.smk imports it while Snakemake parses the workflow.
"""

DISPLAY_NAMES = {"ctnet": "CTNet", "wozniak2023": "Wozniak 2023", "soundari2022": "Soundari 2022"}
"""Legend names of the registered models; any other key is shown as given."""


def display_name(key: str) -> str:
    """Display name of a model or reader key (``"ctnet"`` -> ``"CTNet"``)."""
    return DISPLAY_NAMES.get(key, key)

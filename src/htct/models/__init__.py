"""Models that map one head CT ([B, C, 28, H, W]) to an HT logit: CTNet and the two baselines.

>>> from htct.models import create_model, list_models
>>> list_models()
['ctnet', 'soundari2022', 'wozniak2023']

The registry (:mod:`htct.models.registry`) imports no torch; the model modules are imported when a
model is first asked for (every module of this package, so a model in a new file registers itself:
adding a model touches only its own file; docs/models.md, "Adding a model").
"""

import importlib

from htct.models.registry import (
    ModelSpec,
    create_model,
    display_name,
    list_models,
    model_options,
    model_spec,
    register_model,
)

_LAZY = {
    "CTNet": "ctnet",
    "GlobalPool": "ctnet",
    "HTPredictor": "ctnet",
    "InputWindow": "ctnet",
    "ResidualBlock1": "ctnet",
    "ResidualBlock2": "ctnet",
    "CorrelationLearningCNN": "baselines",
    "PlainCNN": "baselines",
    "count_parameters": "summary",
    "layer_table": "summary",
    "layer_table_markdown": "summary",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CTNet",
    "CorrelationLearningCNN",
    "GlobalPool",
    "HTPredictor",
    "InputWindow",
    "ModelSpec",
    "PlainCNN",
    "ResidualBlock1",
    "ResidualBlock2",
    "count_parameters",
    "create_model",
    "display_name",
    "layer_table",
    "layer_table_markdown",
    "list_models",
    "model_options",
    "model_spec",
    "register_model",
]

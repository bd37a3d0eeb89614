"""Models that map one head CT ([B, C, 28, H, W]) to an HT logit: CTNet and the two baselines.

>>> from htct.models import create_model, list_models
>>> list_models()
['ctnet', 'soundari2022', 'wozniak2023']
"""

from htct.models import baselines, ctnet  # noqa: F401  (registers the models)
from htct.models.baselines import CorrelationLearningCNN, PlainCNN
from htct.models.ctnet import CTNet, GlobalPool, HTPredictor, InputWindow, ResidualBlock1, ResidualBlock2
from htct.models.registry import create_model, list_models, register_model
from htct.models.summary import count_parameters, layer_table, layer_table_markdown

__all__ = [
    "CTNet",
    "CorrelationLearningCNN",
    "GlobalPool",
    "HTPredictor",
    "InputWindow",
    "PlainCNN",
    "ResidualBlock1",
    "ResidualBlock2",
    "count_parameters",
    "create_model",
    "layer_table",
    "layer_table_markdown",
    "list_models",
    "register_model",
]

"""Model registry keyed by name (timm's `register_model` idea), so a rule asks for `ctnet` and gets it."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

ModelFactory = Callable[..., nn.Module]

_MODEL_FACTORIES: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register a factory `fn(in_channels, n_slices, **kw) -> nn.Module` under `name`.

    Args:
        name: registry key, as used in config.yaml `train.models`.

    Returns:
        A decorator that registers the factory and returns it unchanged.
    """

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _MODEL_FACTORIES:
            raise ValueError(f"model {name!r} is already registered")
        _MODEL_FACTORIES[name] = factory
        return factory

    return decorator


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_MODEL_FACTORIES)


def create_model(name: str, in_channels: int = 1, n_slices: int = 28, **kwargs: object) -> nn.Module:
    """Build a registered model that maps [B, in_channels, n_slices, H, W] to one HT logit per scan [B, 1].

    Args:
        name: a name from `list_models()`.
        in_channels: number of HU windows (input channels).
        n_slices: number of axial slices (the paper: 28).
        **kwargs: model-specific options (e.g. `conv="2d"`, `width=32` for ctnet).

    Returns:
        The model, in training mode, with freshly initialised weights.

    Example:
        >>> import torch
        >>> model = create_model("ctnet", in_channels=1, n_slices=28)
        >>> model(torch.zeros(2, 1, 28, 32, 32)).shape
        torch.Size([2, 1])
    """
    try:
        factory = _MODEL_FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None
    return factory(in_channels=in_channels, n_slices=n_slices, **kwargs)

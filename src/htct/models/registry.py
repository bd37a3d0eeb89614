"""The model registry: one place for everything about a model (timm's `register_model` idea).

A model is a factory decorated with :func:`register_model`, which records its name (the key a rule
or config.yaml asks for), its display name (tables, legends), its default constructor options, the
input it takes and the layer Grad-CAM explains. Every module of :mod:`htct.models` is imported by
the package, so adding a model is one new file with one decorated factory::

    @register_model("mynet", display_name="MyNet (Doe 2027)", default_options={"width": 8})
    def mynet(in_channels: int = 1, n_slices: int = 28, width: int = 8) -> nn.Module:
        return MyNet(in_channels, n_slices, width)

The workflow's config (``train.models``) is checked against :func:`list_models`, and tables and
figures take :func:`display_name` from here.

This module does not import torch: the statistics and plotting steps run in environments without
it. There, the registry's entries come from ``catalog.yaml``, which ``python -m htct.models.catalog``
writes from the registry (``tests/test_models.py`` checks that the two agree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from torch import nn

ModelFactory = Callable[..., "nn.Module"]
CATALOG_PATH = Path(__file__).with_name("catalog.yaml")

#: What every registered model takes: one preprocessed scan per batch item.
VOLUME_INPUT = "volume [B, C, n_slices, H, W], windowed to [0, 1]"


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    Attributes:
        name: registry key (config.yaml ``train.models``).
        factory: ``fn(in_channels, n_slices, **options) -> nn.Module`` returning one logit per scan.
        display_name: the name tables and figures show.
        default_options: constructor options used unless config.yaml ``train.model_options`` says
            otherwise (recorded in the trained model's config.yaml).
        input_mode: the input the model takes (:data:`VOLUME_INPUT` for every model so far).
        cam_layer: the attribute of the built model whose output Grad-CAM explains.
        reference: the publication the model re-implements ("" for none).
    """

    name: str
    factory: ModelFactory
    display_name: str
    default_options: Mapping[str, object] = field(default_factory=dict)
    input_mode: str = VOLUME_INPUT
    cam_layer: str = "cam_layer"
    reference: str = ""


_MODELS: dict[str, ModelSpec] = {}
#: Modules of htct.models that define no model.
_NOT_MODELS = {"registry", "catalog", "summary"}


@cache
def load_models() -> None:
    """Import every module of htct.models, so that each registers its models (imports torch)."""
    import importlib
    import pkgutil

    import htct.models

    for module in pkgutil.iter_modules(htct.models.__path__):
        if module.name not in _NOT_MODELS:
            importlib.import_module(f"htct.models.{module.name}")


def register_model(
    name: str,
    display_name: str | None = None,
    default_options: Mapping[str, object] | None = None,
    input_mode: str = VOLUME_INPUT,
    cam_layer: str = "cam_layer",
    reference: str = "",
) -> Callable[[ModelFactory], ModelFactory]:
    """Register a factory ``fn(in_channels, n_slices, **options) -> nn.Module`` under ``name``.

    Args:
        name: registry key, as used in config.yaml ``train.models`` (lower-case letters and digits).
        display_name: name in tables and figures (default: ``name``).
        default_options: constructor options applied unless overridden.
        input_mode: the input the model takes.
        cam_layer: the built model's attribute that Grad-CAM explains.
        reference: the publication re-implemented.

    Returns:
        A decorator that registers the factory and returns it unchanged.
    """
    if not name.isalnum() or name.lower() != name:
        raise ValueError(f"model name {name!r} must be lower-case letters and digits (a Snakemake wildcard)")

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = ModelSpec(
            name=name,
            factory=factory,
            display_name=display_name or name,
            default_options=MappingProxyType(dict(default_options or {})),
            input_mode=input_mode,
            cam_layer=cam_layer,
            reference=reference,
        )
        return factory

    return decorator


def unregister_model(name: str) -> None:
    """Remove a model (for tests that register a toy model)."""
    _MODELS.pop(name, None)


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    load_models()
    return sorted(_MODELS)


def model_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``.

    Raises:
        ValueError: the name is not registered (the message lists the known models).
    """
    if name not in _MODELS:
        load_models()
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


@cache
def catalog() -> dict[str, dict]:
    """The registered models' descriptions (name -> display_name, default_options, reference, ...)
    as ``catalog.yaml`` records them, for processes that do not import the models (no torch)."""
    return yaml.safe_load(CATALOG_PATH.read_text()) if CATALOG_PATH.is_file() else {}


def describe(spec: ModelSpec) -> dict:
    """A registry entry as catalog.yaml stores it."""
    return {
        "display_name": spec.display_name,
        "default_options": dict(spec.default_options),
        "input_mode": spec.input_mode,
        "cam_layer": spec.cam_layer,
        "reference": spec.reference,
    }


def known_model_names() -> list[str]:
    """The registered models, or the catalog's where the models cannot be imported (no torch)."""
    try:
        return list_models()
    except ImportError:
        return sorted(catalog())


def display_name(key: str) -> str:
    """The display name of a registered model (or catalogued one); any other key (a reader's name) as given."""
    spec = _MODELS.get(key)
    if spec is not None:
        return spec.display_name
    entry = catalog().get(key)
    return entry["display_name"] if entry else key


def model_options(name: str, overrides: Mapping[str, object] | None = None) -> dict[str, object]:
    """The constructor options a model is built with: its defaults updated by ``overrides``."""
    return {**model_spec(name).default_options, **dict(overrides or {})}


def create_model(name: str, in_channels: int = 1, n_slices: int = 28, **kwargs: object) -> nn.Module:
    """Build a registered model that maps [B, in_channels, n_slices, H, W] to one HT logit per scan [B, 1].

    Args:
        name: a name from `list_models()`.
        in_channels: number of HU windows (input channels).
        n_slices: number of axial slices (the paper: 28).
        **kwargs: model-specific options (e.g. `conv="2d"`, `width=32` for ctnet) on top of the
            model's default options.

    Returns:
        The model, in training mode, with freshly initialised weights.

    Example:
        >>> import torch
        >>> model = create_model("ctnet", in_channels=1, n_slices=28)
        >>> model(torch.zeros(2, 1, 28, 32, 32)).shape
        torch.Size([2, 1])
    """
    spec = model_spec(name)
    return spec.factory(in_channels=in_channels, n_slices=n_slices, **model_options(name, kwargs))

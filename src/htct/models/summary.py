"""Layer tables of the models (docs/models.md is generated from these, and a test checks it)."""

from __future__ import annotations

import torch
from torch import nn

from htct.models.registry import create_model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_table(model: nn.Module, input_shape: tuple[int, ...], depth: int = 2) -> list[dict[str, object]]:
    """Output shape and parameter count of every module down to `depth` levels, in forward order.

    Args:
        model: the model (switched to eval mode for the dry run, then restored).
        input_shape: one scan's shape without the batch axis, e.g. (1, 28, 96, 96).
        depth: how many levels of named submodules to list (1: children of the model).

    Returns:
        Rows with keys layer (dotted name), type, output_shape (without batch), parameters.
    """
    rows: list[dict[str, object]] = []
    hooks = []
    for name, module in model.named_modules():
        if not name or name.count(".") >= depth or name == "cam_layer":
            continue

        def hook(mod: nn.Module, _inputs: object, output: torch.Tensor, name: str = name) -> None:
            rows.append(
                {
                    "layer": name,
                    "type": type(mod).__name__,
                    "output_shape": tuple(output.shape[1:]),
                    "parameters": sum(p.numel() for p in mod.parameters()),
                }
            )

        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for handle in hooks:
            handle.remove()
        model.train(was_training)
    return rows


def layer_table_markdown(
    name: str, in_channels: int = 1, n_slices: int = 28, size: int = 96, depth: int = 2, **kwargs: object
) -> str:
    """A markdown layer table of a registered model, with input shape and total parameter count.

    Args:
        name: registered model name.
        in_channels: number of HU windows.
        n_slices: axial slices.
        size: in-plane size.
        depth: module depth listed.
        **kwargs: model options (e.g. conv="2d").

    Returns:
        Markdown text: a heading line, the input shape, the parameter count and the table.
    """
    model = create_model(name, in_channels=in_channels, n_slices=n_slices, **kwargs)
    input_shape = (in_channels, n_slices, size, size)
    options = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    lines = [
        f"**{name}**{f' ({options})' if options else ''}: input [B, {', '.join(map(str, input_shape))}], "
        f"{count_parameters(model):,} parameters",
        "",
        "| layer | type | output shape | parameters |",
        "|---|---|---|---|",
    ]
    for row in layer_table(model, input_shape, depth=depth):
        shape = "×".join(str(s) for s in row["output_shape"])
        lines.append(f"| {row['layer']} | {row['type']} | {shape} | {row['parameters']:,} |")
    return "\n".join(lines) + "\n"


def models_markdown(size: int = 96, n_slices: int = 28, in_channels: int = 1) -> str:
    """The layer tables of docs/models.md: CTNet in both conv modes, then the two baselines."""
    variants = [
        ("ctnet", {"conv": "3d"}),
        ("ctnet", {"conv": "2d"}),
        ("wozniak2023", {}),
        ("soundari2022", {}),
    ]
    return "\n".join(
        layer_table_markdown(name, in_channels=in_channels, n_slices=n_slices, size=size, **options)
        for name, options in variants
    )


if __name__ == "__main__":
    print(models_markdown())

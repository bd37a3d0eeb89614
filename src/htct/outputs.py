"""The files a library call writes, as the rule that runs it declares them.

A stage's outputs are a frozen dataclass of paths that also inherits :class:`RuleOutputs`: the
script passes ``X.from_rule(snakemake.output)`` and the library writes exactly those files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar


class RuleOutputs:
    """Mixin for a frozen dataclass whose fields are the paths of one stage's outputs.

    ``FOLDER_NAMES``: the conventional file names, one per field in field order, that
    :meth:`in_folder` puts in one folder (a subclass with other conventions overrides ``in_folder``).
    """

    FOLDER_NAMES: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def in_folder(cls, folder: str | Path):  # noqa: ANN206  (the subclass)
        """The conventional names (``FOLDER_NAMES``) in one folder."""
        names = cls.FOLDER_NAMES
        if len(names) != len(dataclasses.fields(cls)):
            raise TypeError(
                f"{cls.__name__}.FOLDER_NAMES must name each of its {len(dataclasses.fields(cls))} outputs"
            )
        return cls(*(Path(folder) / name for name in names))

    @classmethod
    def from_rule(cls, output: object):  # noqa: ANN206  (the subclass)
        """The paths a rule declares under the dataclass's field names (``snakemake.output``)."""
        return cls(*(Path(getattr(output, field.name)) for field in dataclasses.fields(cls)))

    @classmethod
    def of(cls, outputs: object):  # noqa: ANN206  (the subclass)
        """``outputs`` itself, or the conventional names (the subclass's ``in_folder``) in the folder it names."""
        return outputs if isinstance(outputs, cls) else cls.in_folder(outputs)

    def make_folders(self) -> None:
        """Create the folder of every output."""
        for path in dataclasses.astuple(self):
            Path(path).parent.mkdir(parents=True, exist_ok=True)

"""Errors meant for the user: one line that names the file or patient and says what to do."""

from __future__ import annotations

import sys
from types import TracebackType

# Scripts' logs mark user-facing errors with this prefix; the workflow's onerror handler prints them.
ERROR_PREFIX = "HTCT-ERROR:"


class HTCTInputError(ValueError):
    """Bad input data (DICOM tree, clinical or readers sheet, configuration)."""


def _excepthook(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    if isinstance(error, HTCTInputError):
        print(f"{ERROR_PREFIX} {error}", file=sys.stderr, flush=True)
        return
    sys.__excepthook__(kind, error, traceback)


def report_input_errors() -> None:
    """Make an uncaught HTCTInputError end the process with one line (and exit status 1).

    Bad input is the user's to fix, so it gets a sentence, not a traceback; any other exception is
    a bug and keeps its full traceback. Called by every workflow script after it redirects stderr
    to its log.
    """
    sys.excepthook = _excepthook

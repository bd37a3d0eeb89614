"""Errors meant for the user: one line that names the file or patient and says what to do."""


class HTCTInputError(ValueError):
    """Bad input data (DICOM tree, clinical or readers sheet, configuration)."""

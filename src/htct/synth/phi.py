"""Fake but realistic identifying data for the synthetic DICOM headers.

Every string here is invented. The synthetic cohort writes them into the headers so that the
workflow's de-identification (no PHI in ``results/``) is exercised on data that looks like a real
hospital export; ``truth/phi.tsv`` lists every value written so tests can search outputs for them.
"""

from __future__ import annotations

import numpy as np

FAMILY_NAMES = (
    "ABERNATHY", "BALDWIN", "CARRINGTON", "DELACROIX", "EASTWOOD", "FAIRBANKS", "GALLOWAY",
    "HARTLEY", "INGRAM", "JESSUP", "KINCAID", "LANGFORD", "MARCHETTI", "NORTHCOTT", "OKAFOR",
    "PEMBERTON", "QUINLAN", "ROSSITER", "SOLBERG", "THORNTON", "UNDERHILL", "VANCE", "WHITMORE",
    "YARDLEY", "ZELLWEGER", "ASHWORTH", "BRENNAN", "COLLADO", "DUNMORE", "ELLERY", "FONTAINE",
    "GRIMSHAW", "HOLLOWAY", "IVERSEN", "KOWALCZYK", "LINDQVIST", "MORAVEC", "NAKASHIMA",
    "OYELARAN", "PRZYBYLA",
)  # fmt: skip
GIVEN_NAMES_F = (
    "ADA", "BEATRIX", "CLARA", "DAPHNE", "EDITH", "FLORA", "GWENDOLYN", "HELENA", "IRIS", "JUNE",
    "KATHARINA", "LEONOR", "MAREN", "NADIA", "OTTILIE", "PRISCILLA", "ROSALIND", "SIGRID", "TAMSIN",
    "URSULA", "VERA", "WINIFRED",
)  # fmt: skip
GIVEN_NAMES_M = (
    "ALARIC", "BARNABY", "CORNELIUS", "DESMOND", "EVERETT", "FELIX", "GIDEON", "HORACE", "IGNATIUS",
    "JASPER", "LEOPOLD", "MALACHY", "NILS", "OSWALD", "PERCIVAL", "RUFUS", "SILAS", "THADDEUS",
    "ULRIC", "VIKTOR", "WENDELL", "ZEBEDEE",
)  # fmt: skip
INSTITUTIONS = (
    "Harrowgate Valley General Hospital",
    "St. Elspeth Memorial Stroke Centre",
    "Northmoor University Hospital",
    "Kestrel Bay Regional Medical Center",
)
STATION_NAMES = ("CTROOM1", "CTROOM2", "EDCT01")


def person_name(rng: np.random.Generator, sex: str) -> str:
    """A DICOM PN value ``FAMILY^GIVEN`` drawn from the lists above."""
    given = GIVEN_NAMES_M if sex == "M" else GIVEN_NAMES_F
    return f"{rng.choice(FAMILY_NAMES)}^{rng.choice(given)}"


def physician_name(rng: np.random.Generator) -> str:
    """A referring physician's PN value, ``FAMILY^GIVEN^^DR``."""
    given = GIVEN_NAMES_F + GIVEN_NAMES_M
    return f"{rng.choice(FAMILY_NAMES)}^{rng.choice(given)}^^DR"


def hospital_ids(rng: np.random.Generator, n: int, digits: int) -> list[str]:
    """``n`` distinct zero-free-leading numeric IDs (MRNs, accession numbers) of ``digits`` digits."""
    low = 10 ** (digits - 1)
    values = rng.choice(9 * low, size=n, replace=False) + low
    return [str(int(v)) for v in values]


def folder_names(rng: np.random.Generator, n: int, length: int = 8) -> list[str]:
    """``n`` distinct random upper-case folder names, unrelated to any identifier."""
    alphabet = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        name = "".join(rng.choice(alphabet, size=length))
        if name not in seen and not name[0].isdigit():
            seen.add(name)
            names.append(name)
    return names

"""No protected health information in anything the workflow writes (results/, logs/, the HTML report).

The synthetic cohort writes fake but realistic PHI into its DICOM headers and lists every value in
resources/synthetic/truth/phi.tsv; every output file of the tiny run is searched for every value, in
its raw bytes and in every layer that could hide text: gzip (.nii.gz), zip members (torch
checkpoints), PDF Flate streams, PNG text chunks, base64 data URIs of the HTML report.
"""

from __future__ import annotations

import base64
import gzip
import io
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from conftest import run_snakemake

pytestmark = pytest.mark.slow

PDF_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.DOTALL)
# Media type, then any parameters (Snakemake's report writes ";charset=utf8;filename=fig.png").
DATA_URI = re.compile(rb"data:[\w/+.-]+(?:;[\w.+-]+=[^;,\"'\s]*)*;base64,([A-Za-z0-9+/=]+)")


NPY_MAGIC = b"\x93NUMPY"


def numeric_npy_header(data: bytes) -> bytes | None:
    """The header of a .npy file whose array holds numbers, else None (text arrays are searched whole).

    The payload of a numeric array is binary numbers, not text: the three bytes of ADA (41 44 41) are
    as likely there as in any float32 near 12.3, so only the header (dtype, shape) is a readable layer.
    """
    stream = io.BytesIO(data)
    major, _ = np.lib.format.read_magic(stream)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    _, _, dtype = read_header(stream)
    return data[: stream.tell()] if dtype.kind in "biufc" else None


def readable_layers(data: bytes, depth: int = 0) -> list[bytes]:
    """``data`` and every decoded layer inside it in which an identifier could be written as text.

    A base64 payload of a data URI is searched decoded, as its own layer, and blanked in ``data``:
    its letters are an encoding, not text, and a short name (ADA) turns up in them by chance.
    """
    if data[:6] == NPY_MAGIC:
        return [numeric_npy_header(data) or data]
    payloads = DATA_URI.findall(data)
    layers = [DATA_URI.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)], data) if payloads else data]
    if depth > 3:
        return layers
    inner: list[bytes] = []
    if data[:2] == b"\x1f\x8b":
        inner.append(gzip.decompress(data))
    elif data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inner += [archive.read(name) for name in archive.namelist()]
        inner.append(b"\n".join(name.encode() for name in archive.namelist()))
    elif data[:5] == b"%PDF-":
        for stream in PDF_STREAM.findall(data):
            try:
                inner.append(zlib.decompress(stream))
            except zlib.error:
                pass  # not Flate-encoded: already searched as raw bytes
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        position = 8
        while position + 8 <= len(data):
            length = int.from_bytes(data[position : position + 4], "big")
            kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
            if kind in (b"zTXt", b"iTXt") and b"\x00" in body:
                keyword, rest = body.split(b"\x00", 1)
                for start in range(len(rest)):  # the compressed text follows 1-4 flag/language bytes
                    try:
                        inner.append(keyword + b"\x00" + zlib.decompress(rest[start:]))
                        break
                    except zlib.error:
                        continue
            position += 12 + length
    for match in payloads:
        inner.append(base64.b64decode(match + b"=" * (-len(match) % 4)))
    for layer in inner:
        layers += readable_layers(layer, depth + 1)
    return layers


DIGIT_RUN = re.compile(rb"[0-9]{8,}")  # leftmost-longest: each match is a whole run of digits
ISO_DATE = re.compile(rb"(?<![0-9])[0-9]{4}-[0-9]{2}-[0-9]{2}(?![0-9])")
LETTER_RUN = re.compile(rb"[A-Za-z]{3,}")  # each match is a whole word (run of letters)


def phi_needles(phi: pd.DataFrame) -> dict[str, set[bytes]]:
    """What to look for, per kind of match, for every identifying string of phi.tsv.

    Numeric identifiers (PatientID, AccessionNumber, birth dates) must be a whole run of digits: a
    leaked value is its own token, while the same eight digits inside a longer number (a float like
    0.6194909182 in numbers.json, or raw array bytes) are a different number and would only match by
    chance. Birth dates are also looked for in ISO form (1957-03-12). Names are looked for whole (the
    PN value with its ^, or with spaces/underscores, any case) and per component as whole words:
    family names in any case (a title-cased 'Holloway' is as much a leak), given names as written in
    the header (upper case), because short given names (IRIS, VERA, JUNE) are ordinary words in
    lower case. Institution names are looked for whole and by their distinctive first word, any case.
    Words are searched as whole words so that VANCE does not hit 'advance'.
    """
    needles: dict[str, set[bytes]] = {
        "digits": set(),
        "iso": set(),
        "word_any_case": set(),
        "word": set(),
        "phrase": set(),
    }
    for keyword, value in zip(phi["keyword"], phi["value"].astype(str), strict=True):
        value = value.strip()
        if not value:
            continue
        if keyword in ("PatientID", "AccessionNumber", "PatientBirthDate") and value.isdigit():
            needles["digits"].add(value.encode())
            if keyword == "PatientBirthDate" and len(value) == 8:
                needles["iso"].add(f"{value[:4]}-{value[4:6]}-{value[6:]}".encode())
        elif keyword.endswith("Name") and keyword != "InstitutionName":
            parts = [part for part in value.split("^") if part and part != "DR"]
            needles["phrase"] |= {v.lower().encode() for v in (value, " ".join(parts), "_".join(parts))}
            needles["word_any_case"].add(parts[0].lower().encode())
            needles["word"] |= {part.encode() for part in parts[1:]}
        else:  # InstitutionName and anything else: the whole value, and its first word when distinctive
            needles["phrase"].add(value.lower().encode())
            first = re.sub(r"[^A-Za-z]", "", value.split()[0])
            if len(first) >= 6:
                needles["word_any_case"].add(first.lower().encode())
    return needles


def search(layer: bytes, needles: dict[str, set[bytes]]) -> set[bytes]:
    """The needles found in one layer (few regex passes per layer, then set lookups)."""
    words = set(LETTER_RUN.findall(layer))
    lowered = layer.lower()
    found = (set(DIGIT_RUN.findall(layer)) & needles["digits"]) | (
        set(ISO_DATE.findall(layer)) & needles["iso"]
    )
    found |= {word.lower() for word in words} & needles["word_any_case"]
    found |= words & needles["word"]
    found |= {phrase for phrase in needles["phrase"] if phrase in lowered}
    return found


def find_phi(files: list[Path], needles: dict[str, set[bytes]]) -> list[str]:
    hits = set()
    for path in files:
        for layer in readable_layers(path.read_bytes()):
            hits |= {f"{path}: {needle.decode()}" for needle in search(layer, needles)}
    return sorted(hits)


def test_numeric_arrays_are_searched_by_their_header_and_text_arrays_whole():
    """A float array's bytes are numbers (ADA is 41 44 41, as in float32 values near 12.3), so only a .npy
    header is text; an array of byte strings is searched whole, inside an .npz too."""
    needles = {"digits": set(), "iso": set(), "word_any_case": set(), "word": {b"ADA"}, "phrase": set()}
    numeric, text, archive = io.BytesIO(), io.BytesIO(), io.BytesIO()
    np.save(numeric, np.frombuffer(b"ADA!" * 4, dtype=np.float32))
    np.save(text, np.array([b"ADA SMITH"]))
    np.savez(archive, maps=np.frombuffer(b"ADA!" * 4, dtype=np.float32), names=np.array([b"ADA"]))
    assert not set().union(*(search(layer, needles) for layer in readable_layers(numeric.getvalue())))
    assert {b"ADA"} == set().union(*(search(layer, needles) for layer in readable_layers(text.getvalue())))
    assert {b"ADA"} == set().union(*(search(layer, needles) for layer in readable_layers(archive.getvalue())))


@pytest.fixture(scope="module")
def outputs(tiny_run):
    run_snakemake(tiny_run, "--report", "results/report.html")
    phi = pd.read_csv(
        tiny_run / "resources/synthetic/truth/phi.tsv", sep="\t", dtype=str, keep_default_na=False
    )
    files = sorted(p for folder in ("results", "logs") for p in (tiny_run / folder).rglob("*") if p.is_file())
    return tiny_run, phi, files


def test_the_search_finds_phi_where_it_is(outputs):
    """The search works: it finds every kind of PHI in the input DICOM files and in hidden layers."""
    workdir, phi, _ = outputs
    needles = phi_needles(phi)
    tree = sorted((workdir / "resources/synthetic/dicom").rglob("*"))
    dicom = next(p for p in tree if p.is_file() and p.read_bytes()[128:132] == b"DICM")
    found = {needle.decode() for needle in search(dicom.read_bytes(), needles)}
    patient = phi.loc[
        phi["value"] == str(pydicom.dcmread(dicom, stop_before_pixels=True).PatientID), "patient_id"
    ]
    of_patient = phi[(phi["patient_id"] == patient.iloc[0]) & (phi["scan_id"] == "")].set_index("keyword")[
        "value"
    ]
    for keyword in ("PatientID", "PatientBirthDate"):
        assert of_patient[keyword] in found, keyword
    assert of_patient["InstitutionName"].lower() in found
    assert of_patient["PatientName"].lower() in found
    family = of_patient["PatientName"].split("^")[0]
    hidden = gzip.compress(
        b"<img src='data:image/png;base64," + base64.b64encode(family.title().encode()) + b"'>"
    )
    assert {family.lower().encode()} == set().union(
        *(search(layer, needles) for layer in readable_layers(hidden))
    )
    # A data URI with parameters, as Snakemake's report writes them, is decoded too; the letters of
    # a base64 payload are not searched as text.
    given = of_patient["PatientName"].split("^")[1]
    with_parameters = b"data:text/plain;charset=utf8;filename=a.txt;base64," + base64.b64encode(
        given.encode()
    )
    assert given.encode() in set().union(
        *(search(layer, needles) for layer in readable_layers(with_parameters))
    )
    payload = b"AAAA9" + given.encode() + b"9AAA"
    chance = b"data:image/png;base64," + payload + b"A" * (-len(payload) % 4)
    assert not set().union(*(search(layer, needles) for layer in readable_layers(chance)))
    birth = of_patient["PatientBirthDate"].encode()
    assert search(b"born " + birth, needles) == {birth}
    assert not search(b"0.1" + birth + b"7", needles)  # part of a longer number: not that date


def test_no_phi_in_any_output(outputs):
    workdir, phi, files = outputs
    kinds = {p.suffix for p in files}
    # Every kind of output is searched, the report included.
    assert {
        ".tsv",
        ".csv",
        ".md",
        ".tex",
        ".json",
        ".pdf",
        ".png",
        ".gz",
        ".npy",
        ".pt",
        ".log",
        ".html",
    } <= kinds
    assert (workdir / "results/report.html").stat().st_size > 10_000
    hits = find_phi(files, phi_needles(phi))
    assert not hits, "PHI in the outputs:\n" + "\n".join(hits[:50])

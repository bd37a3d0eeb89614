"""Which reconstruction a CT series is: soft tissue (brain), bone or lung, from its kernel and description.

A head CT study often holds the same acquisition reconstructed twice or more: a smooth soft-tissue
(brain) kernel, which the model is trained on, and a sharp bone kernel (or a lung kernel in a
head-and-chest trauma scan), whose noise hides the brain's 5-10 HU contrasts and empties the brain
mask. When a study holds several acceptable series, the converter keeps a soft-tissue one.

ConvolutionKernel (0018,1210) is vendor-specific and not coded. The names below follow each vendor's
naming scheme; the sources are listed in docs/conversion.md ("Which series of a study"):

- GE: words. STANDARD, STND, STD(+), SOFT, SMOOTH -> soft tissue; BONE, BONEPLUS, EDGE -> bone;
  DETAIL, SHARP -> sharp; LUNG, CHEST -> lung.
- Siemens: family letter(s), a two-digit sharpness index, a letter for the variant (H31s, Hr40f,
  J40s, B70f, I26f, Bl57f; SAFIRE/ADMIRE add a strength: "I31f\\3"). H/J = head, B/Br/Bv = body,
  I = iterative body, Q = quantitative, U = ultra-high resolution; a second letter l = lung. An
  index below 50 is a soft-tissue kernel (H30s/H31s/H40s, J30s/J40s, Hr38, Br36), 50 and above a
  sharp one (H60s, H70h, Hr64h, J70h: bone; B60-B80: sharp body kernels used for lung and bone).
- Philips: one or two letters. U (UA, UB, UC: brain), A, B, C (body), S -> soft tissue; D, E (EA,
  EB, EC), Y (YA, YB, YC, YD) -> bone (sharp); L -> lung.
- Canon/Toshiba: FC and two digits. FC01-FC29 (body FC0x-FC1x, head FC2x: FC21, FC23, FC26),
  FC40-FC49 and FC60-FC69 (head, AIDR: FC63, FC64, FC68) -> soft tissue; FC30-FC39 (FC30, FC35)
  and FC80-FC89 (high-resolution: FC81, FC86) -> bone; FC50-FC59 (FC51, FC52, FC55) -> lung.

A kernel none of these rules knows leaves the decision to SeriesDescription and ImageType words
(BONE, LUNG, BRAIN, SOFT, STD, ...), and failing those to "unknown", ranked between soft tissue and
sharp kernels. Only the matched word is ever written out (descriptions are free text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SOFT_TISSUE, BONE, LUNG, SHARP, UNKNOWN = "soft tissue", "bone", "lung", "sharp", "unknown"
#: Preference order: a lower rank is kept first.
RANK = {SOFT_TISSUE: 0, UNKNOWN: 1, SHARP: 2, BONE: 2, LUNG: 2}
# Words, in the order they are looked for (a "BONE STD" description is bone).
WORDS = (
    (LUNG, ("LUNG", "LUNGS", "PULMONARY", "CHEST")),
    (BONE, ("BONE", "BONEPLUS", "BONE+", "EDGE", "OSSEOUS", "SKULL BASE", "TEMPORAL BONE")),
    (SHARP, ("SHARP", "DETAIL", "HIGH RESOLUTION", "HR")),
    (SOFT_TISSUE, ("BRAIN", "SOFT", "SOFT TISSUE", "STANDARD", "STND", "STD", "STD+", "SMOOTH", "CEREBRUM")),
)
SIEMENS = re.compile(r"^([A-Z])([A-Z]?)(\d{2})([A-Z]?)\d*$")
CANON = re.compile(r"^FC(\d{2})$")
PHILIPS = re.compile(r"^[A-Z]{1,2}$")
PHILIPS_CLASS = {"U": SOFT_TISSUE, "A": SOFT_TISSUE, "B": SOFT_TISSUE, "C": SOFT_TISSUE, "S": SOFT_TISSUE,
                 "D": BONE, "E": BONE, "Y": BONE, "L": LUNG}  # fmt: skip
# Canon/Toshiba: by the tens digit of the FC number.
CANON_CLASS = {0: SOFT_TISSUE, 1: SOFT_TISSUE, 2: SOFT_TISSUE, 3: BONE, 4: SOFT_TISSUE, 5: LUNG,
               6: SOFT_TISSUE, 8: BONE}  # fmt: skip


@dataclass(frozen=True)
class Reconstruction:
    """The kind of reconstruction and what showed it (safe to write: no free text)."""

    kind: str
    evidence: str

    @property
    def rank(self) -> int:
        """0 soft tissue, 1 unknown, 2 bone/lung/sharp."""
        return RANK[self.kind]

    def describe(self) -> str:
        """E.g. "soft-tissue reconstruction (ConvolutionKernel UB)"."""
        return f"{self.kind.replace(' ', '-')} reconstruction ({self.evidence})"


def _first_value(kernel: str) -> str:
    """The kernel's name: its first value ("Hr40f\\3" -> "Hr40f")."""
    return kernel.split("\\")[0].strip()


def _words(text: str) -> tuple[str, str] | None:
    """(kind, word) of the first word of WORDS in upper-case ``text``, as a whole word."""
    for kind, words in WORDS:
        for word in words:
            if re.search(rf"(?<![A-Z0-9]){re.escape(word)}(?![A-Z0-9])", text):
                return kind, word
    return None


def kernel_kind(kernel: str) -> str | None:
    """Soft tissue, bone, lung or sharp from a ConvolutionKernel value; None when no rule knows it.

    Example:
        >>> kernel_kind("H31s"), kernel_kind("Hr64h\\\\1"), kernel_kind("UB"), kernel_kind("FC30")
        ('soft tissue', 'bone', 'soft tissue', 'bone')
    """
    name = _first_value(kernel).upper()
    if not name:
        return None
    found = _words(name)
    if found:
        return found[0]
    canon = CANON.match(name)
    if canon:
        return CANON_CLASS.get(int(canon.group(1)) // 10)
    siemens = SIEMENS.match(name)
    if siemens:
        family, variant, index = siemens.group(1), siemens.group(2), int(siemens.group(3))
        if variant == "L":
            return LUNG
        if index < 50:
            return SOFT_TISSUE
        return SHARP if family in ("B", "I") else BONE
    if PHILIPS.match(name):
        return PHILIPS_CLASS.get(name[0])
    return None


def classify_reconstruction(kernel: str, description: str, image_type: tuple[str, ...]) -> Reconstruction:
    """The series' reconstruction: from ConvolutionKernel, else SeriesDescription, else ImageType.

    Args:
        kernel: ConvolutionKernel ("" when absent; multi-valued as "Hr40f\\\\3").
        description: SeriesDescription (free text; never written out).
        image_type: ImageType values.

    Returns:
        The kind and its evidence, e.g. ("bone", "ConvolutionKernel BONE").
    """
    kind = kernel_kind(kernel)
    if kind is not None:
        return Reconstruction(kind, f"ConvolutionKernel {_first_value(kernel)}")
    for source, text in (("SeriesDescription", description), ("ImageType", " ".join(image_type))):
        found = _words(text.upper())
        if found:
            return Reconstruction(found[0], f"{source} word {found[1]}")
    what = f"ConvolutionKernel {_first_value(kernel)} not known" if _first_value(kernel) else "no kernel"
    return Reconstruction(UNKNOWN, what)

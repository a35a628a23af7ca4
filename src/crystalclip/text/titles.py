"""Publication titles as found in CIFs, cleaned into one line of text.

AMCSD (and COD, whose ``_publ_section_title`` AMCSD often copies) appends annotation lines to the
title of the paper: ``_cod_database_code 1000333``, ``Sample: T = 300 deg C``, ``Note: rocksalt
structure``, ``T = 24 C``, ``P = 1 atm``, ``Pressure = 0.00 GPa``, ``trial C``, ``disordered model``,
``sample Py``, a bare structure type such as ``Fluorite structure`` or ``Body centered cubic, bcc,
structure`` ... At the same time real titles wrap over several lines ("...groups: II -\\n
pyrobelonite."), so a line after the first is not annotation by position alone.

The rules (checked on all 9,275 AMCSD titles shipped with larixite):

1. The first non-empty line is title, unless it is itself plainly annotation ("Sample: ...",
   "Note: ...", "T = ...", "_cod_database_code ..."), which happens when AMCSD lost the title.
2. A later line is annotation when it starts with an annotation keyword (``_cod_``, ``Note``,
   ``Sample``, ``trial``, ``batch``, ``Quenched``, ``Annealing``, ``refinement X,``, ``Locality:``,
   ``(dis)ordered model``, ...) or a condition assignment (``T =``, ``P =``, ``Pressure =``).
   Weaker signs count only when the line before does not end in a connector (",", ":", "-", "of",
   "with the", ...): a measured condition (``at T = 80 C``, ``P = 6.3 GPa``), a bare structure-type
   label (``Rutile structure``, ``Cubic closest packed, ccp, structure``: capitalised, short, no
   function words), a short "... model" line, a label with a number (``ANA 1``, ``Compound 2``),
   a lone ``natural`` / ``synthetic``, a data citation (``Barclay and Cox (1960)``) or end-member
   code (``Fs65Wo35``).
3. Everything after the first annotation line is annotation too (notes continue over lines, and
   AMCSD puts structure-type labels like "pyroxene" or "garnet" after the conditions).
4. The remaining title lines are joined: with no space after a hyphen glued to a word
   ("Ivrea-" + "Verbano" -> "Ivrea-Verbano"), with a space otherwise ("II -" + "pyrobelonite").
5. Whitespace is collapsed; bibliographic placeholders that are not titles (Wyckoff's
   "Second edition. Interscience Publishers, New York, New York") give "".
"""
from __future__ import annotations

import re

__all__ = ["clean_title", "split_title"]

# annotation wherever it appears
_KEYWORD = re.compile(
    r"""^(
        _cod_ | _\w+\s               # a CIF data name leaking into the text
      | note\b | notes\b | sample\b | samples\b | specimen\b
      | trial\b | batch\b | quenched\b | annealing\b
      | refinement\s+(?-i:[A-Z0-9]{1,3})\b[,.]?    # "refinement D, ..." (not "refinement of")
      | refinement\s+based\s+on\b
      | inversion\s+parameter\b
      | atomic\s+parameters\b
      | (dis)?ordered\s+model\b | (dis)?ordered,
      | (T|P|t|Pressure|Temperature|Temp|Pres|Annealing\s+time)\s*=
      | lo\w{3,9}\s*:                          # "Locality:", "Location:" and their typos
      | method\s*:
      | -?\s*data\s+(collected|obtained|from|taken)\b
      | [a-z]+\s*\#\s*\d+\b                    # "Pyroxene #1 based on ...", "Sample #001"
      | (positive|negative)\s+polarity$
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# annotation unless the line before ends in a connector ("...using the" + "hard sphere model")
_WEAK_KEYWORD = re.compile(
    r"""^(
        model\b | run\b | annealed\b
      | (ANA|case|compound|crystal|phase|specimen|model|run|batch)\s*\#?\s*\d+[a-z]?$
      | (natural|synthetic|normal|inverse)$
      | (\S+\s+){0,3}model$                      # "disordered model", "Not the correct model"
      | (?-i:[A-Z][\w'-]+)(\s+and\s+[A-Z][\w'-]+|\s+et\s+al\.?)?\s+\(\d{4}[a-z]?\)$  # "Barclay and Cox (1960)"
      | ([A-Z][a-z]\d+(\.\d+)?-?){2,}$          # end-member codes: "Fs65Wo35", "Py100-Alm0"
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# a measured condition anywhere in a line: "at T = 80 C", "P = 6.3 GPa", "T = room temp"
_CONDITION = re.compile(
    r"\b[TP]\s*=\s*(?:[-+~]?\d[\d.,]*\s*(?:K|C|deg|°|GPa|MPa|kbar|bar|atm)\b|room\s+temp)",
    re.IGNORECASE,
)
_FUNCTION_WORDS = {
    "a", "an", "and", "as", "at", "by", "for", "from", "in", "its", "of", "on", "or", "the", "to",
    "with", "within", "into", "between", "de", "des", "du", "la", "le", "les", "et", "und", "der",
    "die", "das", "mit", "von",
}
_CONNECTOR_END = re.compile(r"([,:;(\-–]|\b(?:" + "|".join(sorted(_FUNCTION_WORDS)) + r"))$", re.IGNORECASE)
_STRUCTURE_LABEL = re.compile(
    r"^(?:(?:sub|super)structure|[\w][\w\s\-+(),.'/]{0,50}?\bstructure(?:,\s*known as\b.*)?)\.?$",
    re.IGNORECASE,
)
# a first line that is already annotation (the title itself is missing): "Sample: at T = 20 C"
_FIRST_LINE_NOTE = re.compile(r"^(_cod_database_code|sample\s*:|note\s*:|[TP]\s*=)", re.IGNORECASE)
_NOT_A_TITLE = [
    re.compile(r"^(?:\w+\s+)?edition\b.*\bpublishers?\b", re.IGNORECASE),  # Wyckoff, Crystal Structures
]


def _is_structure_label(line: str) -> bool:
    """A bare structure-type label such as "Fluorite structure" (not "...and crystal structure")."""
    if not _STRUCTURE_LABEL.match(line):
        return False
    if not (line[0].isupper() or line.lower().startswith("rocksalt")):
        return False  # "incommensurate modulated structure" continues "...application to an unknown"
    words = re.findall(r"[A-Za-z]+", line.split(", known as")[0])
    return not any(w.lower() in _FUNCTION_WORDS for w in words)  # "Description and crystal structure"


def _is_annotation(line: str, previous: str) -> bool:
    if _KEYWORD.match(line):
        return True
    if _CONNECTOR_END.search(previous.rstrip()):
        return False  # "...with the" + "Fluorite structure", "...at" + "P = 5 GPa"
    return bool(_WEAK_KEYWORD.match(line) or _CONDITION.search(line) or _is_structure_label(line))


def split_title(raw: str | None) -> tuple[str, list[str]]:
    """Split a raw title into (clean title, annotation lines). The title may be ""."""
    if not raw:
        return "", []
    lines = [re.sub(r"\s+", " ", line).strip() for line in str(raw).splitlines()]
    lines = [line for line in lines if line]
    title_lines: list[str] = []
    notes: list[str] = []
    for line in lines:
        if notes and not title_lines and any(p.search(notes[-1]) for p in _NOT_A_TITLE):
            # after a bibliographic placeholder, a compound name may still follow as the title
            if not _is_annotation(line, ""):
                title_lines.append(line)
                continue
        if notes:
            notes.append(line)
        elif any(p.search(line) for p in _NOT_A_TITLE) and not title_lines:
            notes.append(line)  # Wyckoff's "Second edition. Interscience Publishers, ..."
        elif (not title_lines and _FIRST_LINE_NOTE.match(line)) or (
            title_lines and _is_annotation(line, title_lines[-1])
        ):
            notes.append(line)
        else:
            title_lines.append(line)
    title = ""
    for line in title_lines:
        if not title:
            title = line
        elif re.search(r"[\w)\]]-$", title):
            title += line  # "Ivrea-" + "Verbano Zone" -> "Ivrea-Verbano Zone"
        else:
            title += " " + line
    title = re.sub(r"\s+", " ", title).strip()
    return title, notes


def clean_title(raw: str | None) -> str:
    """The publication title without appended annotation lines, on one line; "" when none is left."""
    return split_title(raw)[0]

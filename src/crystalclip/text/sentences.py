"""Sentence splitting that keeps decimals, formulas, abbreviations and initials whole."""
from __future__ import annotations

import re

__all__ = ["split_sentences"]

# Words that end in a period without ending the sentence ("et al. 2001", "Fig. 3", "vs. insulating").
_ABBREVIATIONS = {
    "al", "approx", "ca", "cf", "co", "dr", "e.g", "eg", "eq", "eqs", "etc", "fig", "figs", "i.e", "ie",
    "inc", "ltd", "mr", "mrs", "ms", "no", "nos", "prof", "ref", "refs", "resp", "sp", "st", "vol", "vs",
    "viz", "wt", "gr", "temp", "calc", "obs", "exp", "min", "max", "ibid", "jr", "sr", "mt", "u.s",
}
# A candidate boundary: ., ! or ? (plus closing quotes/brackets), whitespace, then the next sentence.
_BOUNDARY = re.compile(r"""[.!?]+["'”’)\]]*\s+(?=["'“‘(\[]?[A-Z0-9])""")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, each a substring of it (whitespace collapsed).

    A period ends a sentence only before whitespace and a capital or digit, so decimals ("3.8 Å"),
    formulas and "vs. insulating" stay whole, and not after a known abbreviation ("et al.", "Fig.")
    or initials ("J. Smith", "B.C.C."), unless the letter is a unit after a number ("at 300 K. The").
    """
    text = " ".join(str(text).split())
    sentences, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if text[m.start()] == "." and not _period_ends_sentence(text[start:m.start()]):
            continue
        sentences.append(text[start:m.end()].strip())
        start = m.end()
    if text[start:].strip():
        sentences.append(text[start:].strip())
    return sentences


def _period_ends_sentence(before: str) -> bool:
    tokens = before.split()
    if not tokens:
        return False
    word = tokens[-1].lower().lstrip("([{\"'“‘").rstrip(".")
    if word in _ABBREVIATIONS:
        return False
    if re.fullmatch(r"[a-z](\.[a-z])*", word):  # an initial, unless a unit: "300 K", "5 T"
        return len(tokens) > 1 and re.fullmatch(r"[-+~≈]?\d+([.,]\d+)?", tokens[-2]) is not None
    return True

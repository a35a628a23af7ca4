"""Short texts naming a structure's type, with its crystal system or space group (CLaSP's keyword
texts, written from the structure alone): "rock salt", "spinel-type structure", "a cubic perovskite
crystal".

Zero-shot prompts are short names, while the long descriptions name the type once among a dozen
shuffled sentences, and the text tower reads only their first 128 tokens; pairing a structure with
one short text of its type teaches the name itself. Deterministic for a structure and seed."""
from __future__ import annotations

import random

__all__ = ["type_name", "short_fact"]

_WITH_TYPE = ("{t}", "{t} structure", "{t}-type structure", "{t} structure type", "{a} {s} {t}-type crystal",
              "{t} type, space group {g}", "{s} {t}", "{t}-type {s} structure")


def type_name(structure_type: str) -> str:
    """"rock salt (NaCl, B1)" -> "rock salt": the name, without the aliases in brackets."""
    return structure_type.split(" (")[0].strip()


def short_fact(structure_type: str | None, crystal_system: str, symbol: str, key: str, seed: int = 0) -> str | None:
    """One short text of a structure's type (None when it has none); `key` (its id) and `seed` pick the phrasing."""
    if not structure_type:
        return None
    phrasing = random.Random(f"{seed}|{key}").choice(_WITH_TYPE)
    return phrasing.format(t=type_name(structure_type), s=crystal_system, g=symbol,
                           a="an" if crystal_system[:1] in "aeiou" else "a")

"""Elements and compounds in words: element tables, families, and a compound's composition class.

The class comes from the elements and from which of them bond to which (``composition_class``): an
oxide, sulfide, chloride (a halide), nitride, hydride, intermetallic, phosphate / silicate /
carbonate (an oxygen-bonded non-metal centre beside other cations), oxyfluoride, hydroxide, ...,
with the families of the cations ("a ternary oxide of an alkaline-earth metal and a transition
metal"). Also the few English helpers every phrasing uses (articles, "a, b and c", number words).
"""
from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "ANION_WORDS",
    "NUMBER_WORDS",
    "OXOANIONS",
    "Composition",
    "article",
    "composition_class",
    "element_family",
    "element_table",
    "is_metal",
    "join_words",
]

NUMBER_WORDS = {0: "zero", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven",
                 8: "eight", 9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}
_ORDER_WORDS = {1: "elemental", 2: "binary", 3: "ternary", 4: "quaternary", 5: "quinary"}


# --------------------------------------------------------------------------------------------------
# element tables, built once


@lru_cache(maxsize=1)
def element_table() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(symbol, mass, Pauling electronegativity, covalent radius) indexed by atomic number."""
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius
    from pymatgen.core.periodic_table import Element

    symbols, masses, chi, radii = ["X"], [0.0], [0.0], [1.5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about noble gases' missing electronegativity
        for z in range(1, 119):
            el = Element.from_Z(z)
            symbols.append(el.symbol)
            masses.append(float(el.atomic_mass))
            x = el.X
            chi.append(float(x) if x == x else 4.0)  # noble gases: last, with the anions
            radii.append(CovalentRadius.radius.get(el.symbol, 1.5))
    return symbols, np.array(masses), np.array(chi), np.array(radii)


_ALKALI = {3, 11, 19, 37, 55, 87}
_ALKALINE_EARTH = {4, 12, 20, 38, 56, 88}
_POST_TRANSITION = {13, 31, 49, 50, 81, 82, 83, 84, 113, 114, 115, 116}
_METALLOIDS = {5, 14, 32, 33, 51, 52}
_HALOGENS = {9, 17, 35, 53, 85, 117}
_NOBLE = {2, 10, 18, 36, 54, 86, 118}
_FAMILY_PLURALS = {"alkali metal": "alkali metals", "alkaline-earth metal": "alkaline-earth metals",
                   "transition metal": "transition metals", "lanthanide": "lanthanides", "actinide": "actinides",
                   "post-transition metal": "post-transition metals", "metalloid": "metalloids",
                   "non-metal": "non-metals", "halogen": "halogens", "noble gas": "noble gases"}
_METAL_FAMILIES = {"alkali metal", "alkaline-earth metal", "transition metal", "lanthanide", "actinide",
                   "post-transition metal"}
# the word for a compound whose most electronegative bonded anion is this element
ANION_WORDS = {9: "fluoride", 17: "chloride", 35: "bromide", 53: "iodide", 85: "astatide", 8: "oxide", 16: "sulfide",
               34: "selenide", 52: "telluride", 7: "nitride", 15: "phosphide", 33: "arsenide", 51: "antimonide",
               6: "carbide", 5: "boride", 14: "silicide", 32: "germanide", 1: "hydride"}
# an oxygen-bonded non-metal centre beside other cations: the oxoanion's name
OXOANIONS = {5: "borate", 6: "carbonate", 7: "nitrate", 14: "silicate", 15: "phosphate", 16: "sulfate",
             34: "selenate", 33: "arsenate", 17: "chlorate", 35: "bromate", 53: "iodate", 32: "germanate",
             52: "tellurate"}
_CHALCOGENS, _PNICTOGENS = {16, 34, 52}, {7, 15, 33, 51}


def element_family(z: int) -> str:
    """'alkali metal', 'alkaline-earth metal', 'transition metal', 'lanthanide', 'actinide',
    'post-transition metal', 'metalloid', 'halogen', 'noble gas' or 'non-metal'."""
    z = int(z)
    if z in _ALKALI:
        return "alkali metal"
    if z in _ALKALINE_EARTH:
        return "alkaline-earth metal"
    if 57 <= z <= 71:
        return "lanthanide"
    if 89 <= z <= 103:
        return "actinide"
    if 21 <= z <= 30 or 39 <= z <= 48 or 72 <= z <= 80 or 104 <= z <= 112:
        return "transition metal"
    if z in _POST_TRANSITION:
        return "post-transition metal"
    if z in _METALLOIDS:
        return "metalloid"
    if z in _HALOGENS:
        return "halogen"
    if z in _NOBLE:
        return "noble gas"
    return "non-metal"


def is_metal(z: int) -> bool:
    return element_family(z) in _METAL_FAMILIES


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _counted(family: str, count: int) -> str:
    """'a transition metal', 'two lanthanides'."""
    if count == 1:
        return f"{article(family)} {family}"
    return f"{NUMBER_WORDS.get(count, str(count))} {_FAMILY_PLURALS.get(family, family + 's')}"


def join_words(items: list[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------------------------------
# composition class


@dataclass
class Composition:
    order: int  # number of elements
    word: str  # "oxide", "chloride", "intermetallic compound", "phosphate", ...
    note: str | None  # "a halide", "a chalcogenide", ...
    families: list[tuple[str, int]]  # cation families and how many elements of each
    anions: tuple[int, ...]  # atomic numbers that are anions here (most electronegative first)
    centres: tuple[int, ...]  # oxygen-bonded non-metal centres (P in a phosphate)
    ionic: bool

    def phrase(self) -> str:
        """'a ternary oxide of an alkaline-earth metal and a transition metal'."""
        if self.order == 1:
            family = self.families[0][0] if self.families else "solid"
            return f"an elemental {family}"
        order = _ORDER_WORDS.get(self.order, "multicomponent")
        text = f"{article(order)} {order} {self.word}"
        if self.note:
            text += f" ({self.note})"
        if self.families:
            text += " of " + join_words([_counted(f, c) for f, c in self.families])
        return text


def composition_class(present: list[int], chi: np.ndarray, main_z: np.ndarray, i: np.ndarray,
                      j: np.ndarray) -> Composition:
    """The class of a compound from its elements and which of them bond to which (see module doc):
    an anion is a non-metal whose bonds go mostly to metals (or that has no other bonds); the most
    electronegative anion names the class; a non-metal bonded only to O beside other cations is an
    oxoanion centre; H bonded to O makes a hydroxide (or a hydrate, for O bonded to two H only)."""
    order = len(present)
    if order == 1:
        return Composition(1, "element", None, [(element_family(present[0]), 1)], (), (), False)
    metals = [e for e in present if is_metal(e)]
    nonmetals = sorted((e for e in present if not is_metal(e) and e not in _NOBLE), key=lambda e: -chi[e])
    if not nonmetals:
        return Composition(order, "intermetallic compound", None, _families(present), (), (), False)
    # neighbour counts between elements (majority species)
    pairs = Counter(zip(main_z[i].tolist(), main_z[j].tolist()))
    neighbours: dict[int, Counter] = {}
    for (a, b), count in pairs.items():
        neighbours.setdefault(a, Counter())[b] += count

    def share(e: int, test) -> float:
        around = {b: c for b, c in neighbours.get(e, {}).items() if b != e}
        total = sum(around.values())
        return sum(c for b, c in around.items() if test(b)) / total if total else -1.0

    if metals:
        anions = [e for e in nonmetals if share(e, is_metal) >= 0.5 or share(e, is_metal) < 0]
        if not anions:
            anions = nonmetals[:1]
    elif 6 in present and 1 in present:
        anions = []
    else:
        anions = nonmetals[:1] if len(nonmetals) > 1 else nonmetals
    main = anions[0] if anions else None
    others = [e for e in present if e not in anions]
    centres = []
    if main == 8 and len(others) >= 2:
        centres = [e for e in others if e in OXOANIONS and share(e, lambda b: b == 8) >= 0.9]
        if len(centres) == len(others):  # nothing but centres: an oxide of non-metals
            centres = []
    hydrogen = ""
    if 1 in present and 1 not in anions:
        if share(1, lambda b: b == 8) >= 0.5:
            n = len(main_z)
            to_h = main_z[j] == 1
            h_count = np.bincount(i[to_h], minlength=n)
            other = np.bincount(i[~to_h], minlength=n)
            water = bool(((main_z == 8) & (h_count == 2) & (other == 0)).any())
            hydrogen = "hydrate" if water else "hydroxide"
        elif share(1, lambda b: b == 6) >= 0.5:
            hydrogen = "organic"
        elif share(1, lambda b: b == 7) >= 0.5:
            hydrogen = "ammonium"
    if main is None:
        return Composition(order, "organic molecular crystal", None, [], (), (), False)
    word = ANION_WORDS.get(main, "compound")
    note = None
    second = anions[1] if len(anions) > 1 else None
    if second is not None:
        a, b = sorted((main, second), key=lambda e: e != 8)
        if a == 8:
            word = "oxy" + ANION_WORDS.get(b, "anion compound")
        elif main in _HALOGENS and second in _HALOGENS:
            word = "mixed halide"
        elif {main, second} == {6, 7}:
            word = "carbonitride"
        elif main in _HALOGENS and second in _CHALCOGENS:
            word = "chalcohalide"
        else:
            word = f"{ANION_WORDS.get(main, 'mixed-anion')}–{ANION_WORDS.get(second, 'anion')}"
    elif main in _HALOGENS:
        note = "a halide"
    elif main in _CHALCOGENS:
        note = "a chalcogenide"
    elif main in _PNICTOGENS:
        note = "a pnictide"
    if centres:
        word = " and ".join(OXOANIONS[e] for e in centres)
    if hydrogen == "hydroxide":
        word = "hydroxide" if word == "oxide" else f"{word} with hydroxide groups"
    elif hydrogen == "hydrate":
        word = f"hydrated {word}"
    elif hydrogen == "organic":
        word = f"hybrid organic–inorganic {word}" if metals else f"organic {word}"
    elif hydrogen == "ammonium":
        word = f"ammonium {word}"
    skip = set(anions) | set(centres) | ({1} if hydrogen else set()) | ({6} if hydrogen == "organic" else set()) \
        | ({7} if hydrogen == "ammonium" else set())
    cations = [e for e in present if e not in skip]
    return Composition(order, word, note, _families(cations), tuple(anions), tuple(centres), True)


_FAMILY_ORDER = ["alkali metal", "alkaline-earth metal", "transition metal", "lanthanide", "actinide",
                 "post-transition metal", "metalloid", "non-metal", "halogen", "noble gas"]


def _families(elements) -> list[tuple[str, int]]:
    counts = Counter(element_family(e) for e in elements)
    return [(f, counts[f]) for f in _FAMILY_ORDER if counts.get(f)]

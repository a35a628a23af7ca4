"""Structure types (prototypes) by symmetry signature: rock salt, perovskite, spinel, Heusler, ...

pymatgen's ``AflowPrototypeMatcher`` runs StructureMatcher against all 288 AFLOW prototypes:
~330 ms a structure, days at 150k. Here a structure is first reduced to a *signature* taken from
the spglib dataset the describer computes anyway: the space-group number and, per element, the
sorted list of its Wyckoff orbits, each as multiplicity (in spglib's conventional cell) + site
symmetry (``"1m-3m"``, ``"34/mmm"``), with elements anonymous. That is AFLOW's prototype label
(stoichiometry + Pearson symbol + space group + Wyckoff letters) with each Wyckoff letter replaced
by what no choice of origin or axes changes: rock salt's Na 4a / Cl 4b and Na 4b / Cl 4a are one
signature, ``225:4m-3m|4m-3m``. A dict lookup (microseconds) finds the prototypes that share it;
StructureMatcher (ltol 0.2, stol 0.3, 5°, anonymous species) then confirms one of them, or none, on
the few structures that get that far (~3 ms each). The label only fixes the Wyckoff sites, not
their free parameters and axis ratios, so the confirmation is what separates wurtzite from the
5-5 BN type, FeB from MnP and SnS, or a real spinel from an accidental one.

The table: pymatgen's ``analysis/prototypes/aflow_prototypes.json.gz`` (the AFLOW Library of
Crystallographic Prototypes, Mehl et al. 2017; 288 entries, each a structure with its label,
mineral and Strukturbericht names; P1 entries and two whose stored coordinates do not reach their
labelled space group at any tolerance are left out) plus ``EXTRA``: common types the AFLOW part-1
set lacks (double perovskite, garnet, olivine, ThCr2Si2, TiNiSi, ZrNiAl, pyrochlore, scheelite,
delafossite, inverse and quaternary Heusler, rhombohedral perovskite, the n = 2 Ruddlesden-Popper
phase, kesterite), built with pymatgen from literature coordinates. ``EXTRA`` and the curated
``NAMES`` are data in ``text.prototype_names``.

Each prototype has a ``name`` (may name elements: "CsCl (B2)") and a ``free_name`` that
``text.masking.mask_formulas`` leaves alone ("rock salt", "the ordered body-centred cubic AB"),
or None when no such name exists (the AFLOW label, also mask-safe, stands in then). Fluorite and
perovskite-like types have an "anti" name used when the most abundant element is not the most
electronegative one (Li2O is antifluorite, Ca3NAs an antiperovskite).
"""
from __future__ import annotations

import gzip
import json
import math
import re
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .chemistry import element_table
from .prototype_names import EXTRA, NAMES

__all__ = [
    "EXTRA",
    "Prototype",
    "aflow_label",
    "match_prototype",
    "pearson_symbol",
    "prototype_table",
    "signature",
]

SYMPRECS = (0.1, 0.01, 1e-3, 1e-5)  # a prototype's stored coordinates are tried until its label's group comes out
MATCHER = {"ltol": 0.2, "stol": 0.3, "angle_tol": 5.0}  # AflowPrototypeMatcher's initial tolerances
MAX_MATCH_SITES = 400  # sites in the cell above which no StructureMatcher confirmation is tried


@dataclass(frozen=True)
class Prototype:
    label: str  # AFLOW prototype label, e.g. "AB_cF8_225_a_b"
    name: str  # e.g. "rock salt (NaCl, B1)"; may name elements
    free_name: str | None  # a name without formulas or element names, or None
    strukturbericht: str | None = None
    mineral: str | None = None
    anti: tuple[str, str | None] | None = None  # (name, free_name) when the abundant element is the cation
    source: str = "aflow"  # "aflow" (pymatgen's table) or "crystalclip" (EXTRA)
    structure: object = field(default=None, compare=False, repr=False)  # pymatgen Structure

    def names(self, anti: bool = False) -> tuple[str, str | None]:
        """(name, free name), the anti variant's when ``anti`` and there is one."""
        return self.anti if anti and self.anti else (self.name, self.free_name)


# --------------------------------------------------------------------------------------------------
# signatures and labels from a spglib dataset


def _orbits(dataset, numbers) -> dict[int, list[int]]:
    """atomic number -> representative input-site index of each of its Wyckoff orbits."""
    equivalent = np.asarray(dataset.equivalent_atoms)
    per: dict[int, list[int]] = defaultdict(list)
    for orbit in np.unique(equivalent).tolist():
        per[int(numbers[orbit])].append(orbit)
    return per


def signature(dataset, numbers) -> str:
    """Setting-free signature of a structure: ``"225:4m-3m|4m-3m"`` for rock salt (see module doc).

    ``numbers`` are the atomic numbers the dataset was computed from (one per input site)."""
    equivalent = np.asarray(dataset.equivalent_atoms)
    ratio = len(dataset.std_types) / len(equivalent)
    sizes = np.bincount(equivalent, minlength=len(equivalent))
    parts = []
    for orbits in _orbits(dataset, numbers).values():
        sites = sorted(f"{round(sizes[o] * ratio)}{dataset.site_symmetry_symbols[o].replace('.', '')}"
                       for o in orbits)
        parts.append(".".join(sites))
    return f"{int(dataset.number)}:" + "|".join(sorted(parts))


def pearson_symbol(dataset) -> str:
    """Pearson symbol in AFLOW's spelling ("cF8", "hR10": rhombohedral cells count primitive sites)."""
    number = int(dataset.number)
    family = "a" if number <= 2 else "m" if number <= 15 else "o" if number <= 74 else "t" if number <= 142 \
        else "h" if number <= 194 else "c"
    centring = dataset.international[0]
    centring = "C" if centring in "ABCS" else centring
    atoms = len(dataset.std_types)
    if centring == "R":
        family, atoms = "h", atoms // 3
    return f"{family}{centring}{atoms}"


def aflow_label(dataset, numbers, symbols: dict[int, str]) -> str:
    """AFLOW-style label, e.g. "AB3C_cP5_221_a_c_b" (elements in alphabetical order; the Wyckoff
    letters are spglib's, so a structure may come out in another origin choice than AFLOW's)."""
    per = _orbits(dataset, numbers)
    equivalent = np.asarray(dataset.equivalent_atoms)
    counts = Counter(int(numbers[k]) for k in range(len(equivalent)))
    divisor = 0
    for value in counts.values():
        divisor = math.gcd(divisor, value)
    order = sorted(per, key=lambda z: symbols[z])
    stoichiometry = "".join(chr(65 + k) + (str(counts[z] // divisor) if counts[z] // divisor > 1 else "")
                            for k, z in enumerate(order))
    wyckoff = []
    for z in order:
        letters = Counter(dataset.wyckoffs[o] for o in per[z])
        wyckoff.append("".join((str(c) if c > 1 else "") + letter for letter, c in sorted(letters.items())))
    return "_".join([stoichiometry, pearson_symbol(dataset), str(int(dataset.number)), *wyckoff])


# --------------------------------------------------------------------------------------------------
# names

_BAD_MINERAL = re.compile(r"^(alpha|beta|gamma|delta|None|)$|[$/\\_'{}]|superconductor|theoretical", re.IGNORECASE)
_STRUKTURBERICHT = re.compile(r"^[A-Z][0-9A-Za-z_']*$")


def _safe(text: str | None) -> bool:
    from .masking import mask_formulas

    return bool(text) and mask_formulas(text) == text


def _checked(free: str | None) -> str | None:
    """A formula-free name only if the masking agrees (a curated name is checked too)."""
    return free if free and _safe(free) else None


def _default_names(formula: str, mineral: str, strukturbericht: str | None) -> tuple[str, str | None]:
    usable = mineral if mineral and not _BAD_MINERAL.search(mineral) else ""
    sb = strukturbericht if strukturbericht and _STRUKTURBERICHT.match(strukturbericht) else None
    extra = ", ".join(x for x in (usable.lower(), sb) if x)
    name = f"{formula} ({extra})" if extra else formula
    if _safe(usable) and len(usable.split()) <= 3:
        return name, usable.lower()
    if sb and _safe(sb):
        return name, f"the {sb}"
    return name, None


# --------------------------------------------------------------------------------------------------
# the table


def _pymatgen_table() -> Path:
    """pymatgen's copy of the AFLOW prototypes, found without importing pymatgen.analysis.prototypes
    (whose import decodes the same file through monty: 5 s)."""
    from importlib.resources import files

    return Path(str(files("pymatgen.analysis") / "prototypes" / "aflow_prototypes.json.gz"))


def _dataset(structure, symprec):
    import spglib

    cell = (structure.lattice.matrix, structure.frac_coords, [site.specie.Z for site in structure])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spglib.get_symmetry_dataset(cell, symprec=symprec)


def _signatures(structure, number: int) -> list[str] | None:
    """Signatures of a prototype at the tolerance that gives its labelled group, and at 0.1 (the
    describer's) when that differs; None when no tolerance gives the labelled group."""
    numbers = [site.specie.Z for site in structure]
    found = []
    for symprec in SYMPRECS:
        dataset = _dataset(structure, symprec)
        if dataset is None:
            continue
        if symprec == SYMPRECS[0]:
            found.append(signature(dataset, numbers))
        if int(dataset.number) == number:
            found.append(signature(dataset, numbers))
            return list(dict.fromkeys(reversed(found)))
    return None


@lru_cache(maxsize=1)
def prototype_table() -> dict[str, tuple[Prototype, ...]]:
    """signature -> prototypes with that signature (built once per process, ~1 s)."""
    from pymatgen.core import Lattice, Structure

    symbols = element_table()[0]
    table: dict[str, list[Prototype]] = defaultdict(list)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with gzip.open(_pymatgen_table(), "rt") as f:
            entries = json.load(f)
        for entry in entries:
            tags = entry["tags"]
            label, number = tags["aflow"], int(tags["aflow"].split("_")[2])
            if number == 1:
                continue
            structure = Structure.from_dict(entry["snl"])
            keys = _signatures(structure, number)
            if keys is None:
                continue
            sb = None if tags.get("strukturbericht") in (None, "None") else tags["strukturbericht"].strip('"')
            mineral = (tags.get("mineral") or "").strip()
            given = NAMES.get(f"{label}|{sb}") or NAMES.get(label)
            name, free = given[:2] if given else _default_names(structure.composition.reduced_formula, mineral, sb)
            anti = given[2] if given and len(given) > 2 else None
            free, anti = _checked(free), (anti[0], _checked(anti[1])) if anti else None
            proto = Prototype(label, name, free, sb, mineral or None, anti, "aflow", structure)
            for key in keys:
                table[key].append(proto)
        for name, free, anti, number, params, species, coords in EXTRA:
            free = _checked(free)
            structure = _from_spacegroup(number, Lattice.from_parameters(*params), species, coords)
            dataset = _dataset(structure, SYMPRECS[1])
            numbers = [site.specie.Z for site in structure]
            label = aflow_label(dataset, numbers, dict(enumerate(symbols)))
            proto = Prototype(label, name, free, None, None, anti, "crystalclip", structure)
            for key in _signatures(structure, number) or []:
                table[key].append(proto)
    return {key: tuple(protos) for key, protos in table.items()}


def _from_spacegroup(number: int, lattice, species: list[str], coords: list[list[float]]):
    """pymatgen's Structure.from_spacegroup (same setting), with the images merged in bulk: its
    pairwise allclose takes a second on a garnet."""
    from pymatgen.core import Structure
    from pymatgen.symmetry.groups import SpaceGroup

    ops = SpaceGroup.from_int_number(number).symmetry_ops
    rotations = np.array([op.rotation_matrix for op in ops])
    translations = np.array([op.translation_vector for op in ops])
    out_species, out_coords = [], []
    for element, point in zip(species, np.asarray(coords, np.float64)):
        images = (rotations @ point + translations) % 1.0
        images[np.isclose(images, 1.0, atol=1e-6)] = 0.0
        _, keep = np.unique(np.round(images, 4), axis=0, return_index=True)
        out_coords.extend(images[np.sort(keep)])
        out_species.extend([element] * len(keep))
    return Structure(lattice, out_species, out_coords)


_PRIMITIVE: dict[Prototype, object] = {}


def _primitive(proto: Prototype):
    """The prototype's primitive cell, reduced on first use (most prototypes are never candidates)."""
    if proto not in _PRIMITIVE:
        _PRIMITIVE[proto] = proto.structure.get_primitive_structure()
    return _PRIMITIVE[proto]


@lru_cache(maxsize=1)
def _matcher():
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(**MATCHER, primitive_cell=True, scale=True, attempt_supercell=False)


def match_prototype(lattice, frac_coords, numbers, dataset, confirm: bool = True) -> Prototype | None:
    """The prototype of a structure (majority species ``numbers`` per site) given its spglib
    dataset: signature lookup, then StructureMatcher among the candidates (the closest when
    several fit). ``confirm=False`` returns the first candidate unconfirmed."""
    if dataset is None:
        return None
    candidates = prototype_table().get(signature(dataset, numbers))
    if not candidates:
        return None
    if not confirm:
        return candidates[0]
    if len(numbers) > MAX_MATCH_SITES:
        return None
    from pymatgen.core import Lattice, Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure = Structure(Lattice(lattice), [int(z) for z in numbers], frac_coords)
        matcher = _matcher()
        unique = list(dict.fromkeys(candidates))
        if len(unique) == 1:
            return unique[0] if matcher.fit_anonymous(_primitive(unique[0]), structure) else None
        best, best_rms = None, math.inf
        for proto in unique:
            rms = matcher.get_rms_anonymous(_primitive(proto), structure)[0]
            if rms is not None and rms < best_rms:
                best, best_rms = proto, rms
        return best

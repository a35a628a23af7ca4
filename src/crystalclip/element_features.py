"""CGCNN's 92-d one-hot atom features, generated from pymatgen's element data.

CGCNN (Xie & Grossman, PRL 2018) ships the table as ``atom_init.json``; we rebuild it from the
element properties after the recipe in the paper's supplementary Table S2, so the table is
reproducible and covers every element pymatgen knows. Each element row is the concatenation of
nine one-hot blocks (92 columns in all):

======================  =====  ======================================================================
block                   width  categories / binning
======================  =====  ======================================================================
group                   19     groups 1..18, plus one category for lanthanides and actinides (La-Lu,
                               Ac-Lr, which pymatgen puts in group 3)
period                  7      periods 1..7
electronegativity       10     Pauling X, 10 equal bins over [0.5, 4.0]
covalent radius         10     Cordero covalent radius in pm, 10 equal bins over [25, 250]
valence electrons       12     1..12 (see below)
first ionisation energy 10     ln(E / eV), 10 equal bins over [1.3, 3.3]
electron affinity       10     eV, 10 equal bins over [-3.0, 3.7]
block                   4      s, p, d, f
atomic volume           10     ln(molar volume / cm^3 mol^-1), 10 equal bins over [1.5, 4.3]
======================  =====  ======================================================================

Binned values outside a range go to the first / last bin. A property pymatgen does not know for an
element (electronegativity of He/Ne/Ar, molar volume of At/Fr, anything for Z > 103, ...) leaves its
block all zeros, so every block sums to 0 or 1. Valence electrons: the group number for groups 1-12,
group - 10 for groups 13-18 (He: 2); for lanthanides and actinides the electrons outside the
preceding noble-gas core, clipped to 12. Row 0 (no element / dummy) is all zeros.

The categories are stored in ``element_categories.json`` (what pymatgen gave when they were written;
`python -m crystalclip.element_features` rewrites it, tests/test_graphs.py checks it against pymatgen):
a model's input features do not move with a pymatgen release, and building a model does not import
pymatgen (0.6 s of a first search).
"""
from __future__ import annotations

import json
import math
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

MAX_Z = 118

# (name, number of categories) in column order
BLOCKS: tuple[tuple[str, int], ...] = (
    ("group", 19),
    ("period", 7),
    ("electronegativity", 10),
    ("covalent_radius", 10),
    ("valence_electrons", 12),
    ("first_ionization_energy", 10),
    ("electron_affinity", 10),
    ("block", 4),
    ("atomic_volume", 10),
)
NUM_FEATURES = sum(n for _, n in BLOCKS)  # 92

# value ranges for the binned blocks (after the transform noted in the module docstring)
_RANGES = {
    "electronegativity": (0.5, 4.0),
    "covalent_radius": (25.0, 250.0),
    "first_ionization_energy": (1.3, 3.3),
    "electron_affinity": (-3.0, 3.7),
    "atomic_volume": (1.5, 4.3),
}
_NOBLE_GAS_Z = (2, 10, 18, 36, 54, 86)
CATEGORIES_FILE = Path(__file__).with_name("element_categories.json")


def block_slices() -> dict[str, slice]:
    """Column range of each block in the 92-d row."""
    out, start = {}, 0
    for name, width in BLOCKS:
        out[name] = slice(start, start + width)
        start += width
    return out


def _finite(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _bin(value: float | None, name: str, nbins: int = 10) -> int | None:
    if value is None:
        return None
    lo, hi = _RANGES[name]
    return int(min(max(math.floor((value - lo) / (hi - lo) * nbins), 0), nbins - 1))


def _safe(fn):
    try:
        return fn()
    except Exception:  # pymatgen raises KeyError/ValueError/AttributeError for missing data
        return None


def categories_from_pymatgen(z: int) -> dict[str, int | None]:
    """Category index of element z in each block (None = unknown), from pymatgen's element data."""
    from pymatgen.core.periodic_table import Element

    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius

    el = Element.from_Z(z)
    f_block = bool(_safe(lambda: el.is_lanthanoid or el.is_actinoid))
    group = _safe(lambda: int(el.group))
    row = _safe(lambda: int(el.row))

    cat: dict[str, int | None] = {}
    cat["group"] = 18 if f_block else (group - 1 if group and 1 <= group <= 18 else None)
    cat["period"] = row - 1 if row and 1 <= row <= 7 else None

    cat["electronegativity"] = _bin(_finite(_safe(lambda: el.X)), "electronegativity")

    radius = CovalentRadius.radius.get(el.symbol)  # Å, Cordero et al. 2008
    cat["covalent_radius"] = _bin(None if radius is None else 100.0 * radius, "covalent_radius")

    if f_block:
        core = max(g for g in _NOBLE_GAS_Z if g < z)
        valence = min(z - core, 12)
    elif group is None:
        valence = None
    elif z == 2:
        valence = 2
    else:
        valence = group if group <= 12 else group - 10
    cat["valence_electrons"] = valence - 1 if valence and 1 <= valence <= 12 else None

    ie = _finite(_safe(lambda: el.ionization_energy))
    cat["first_ionization_energy"] = _bin(math.log(ie) if ie and ie > 0 else None, "first_ionization_energy")

    cat["electron_affinity"] = _bin(_finite(_safe(lambda: el.electron_affinity)), "electron_affinity")

    block = _safe(lambda: el.block)
    cat["block"] = "spdf".index(block) if block in ("s", "p", "d", "f") else None

    mv = _finite(_safe(lambda: el.molar_volume))
    cat["atomic_volume"] = _bin(math.log(mv) if mv and mv > 0 else None, "atomic_volume")
    return cat


def stored_categories() -> dict[int, dict[str, int | None]]:
    """``element_categories.json``: z -> block -> category index (None = unknown)."""
    rows = json.loads(CATEGORIES_FILE.read_text())["categories"]
    return {z: dict(zip((name for name, _ in BLOCKS), row)) for z, row in enumerate(rows, start=1)}


def write_categories() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns for every missing property
        rows = [list(categories_from_pymatgen(z).values()) for z in range(1, MAX_Z + 1)]
    import pymatgen.core

    body = ",\n".join("  " + json.dumps(row) for row in rows)
    CATEGORIES_FILE.write_text(
        f'{{"made_with": "pymatgen {pymatgen.core.__version__}", "blocks": {json.dumps([n for n, _ in BLOCKS])},\n'
        f' "categories": [\n{body}\n]}}\n')


@lru_cache(maxsize=1)
def cgcnn_element_table() -> np.ndarray:
    """(MAX_Z + 1, 92) float32 table of CGCNN one-hot element features; row z = element z.

    Read once per process and cached; the returned array is read-only.
    """
    table = np.zeros((MAX_Z + 1, NUM_FEATURES), dtype=np.float32)
    slices = block_slices()
    for z, categories in stored_categories().items():
        for name, idx in categories.items():
            if idx is not None:
                table[z, slices[name].start + idx] = 1.0
    table.setflags(write=False)
    return table


if __name__ == "__main__":
    write_categories()

"""Plain numbers about one crystal that a results page shows: lattice parameters, density, the space
group's symbol. One place, so that descriptions and the details panel agree."""
from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np

from .crystal import Crystal

AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


def lattice_parameters(lattice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b, c) in Å and (alpha, beta, gamma) in degrees of a 3x3 row-vector lattice."""
    lengths = np.linalg.norm(lattice, axis=1)
    angles = []
    for p, q in ((1, 2), (0, 2), (0, 1)):
        cos = float(lattice[p] @ lattice[q]) / (lengths[p] * lengths[q])
        angles.append(math.degrees(math.acos(max(-1.0, min(1.0, cos)))))
    return lengths, np.array(angles)


@lru_cache(maxsize=1)
def spacegroup_symbols() -> dict[int, str]:
    """International short symbols in spglib's (and pymatgen's) spelling: 'P6_3/mmc'."""
    import spglib

    symbols: dict[int, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spglib's deprecation notice about its error handling
        for hall in range(1, 531):
            found = spglib.get_spacegroup_type(hall)
            symbols.setdefault(int(found.number), found.international_short)
    return symbols


def density(crystal: Crystal) -> float:
    """g/cm³, occupancies counted."""
    import gemmi

    mass = sum(gemmi.Element(z).weight * occ for site in crystal.species for z, occ in site.items())
    return mass / abs(float(np.linalg.det(crystal.lattice))) * AMU_PER_A3_TO_G_PER_CM3


def cell_summary(crystal: Crystal) -> dict:
    """{"lattice": {a, b, c, alpha, beta, gamma, volume}, "density", "nsites"}, rounded for display."""
    lengths, angles = lattice_parameters(crystal.lattice)
    lattice = dict(zip(("a", "b", "c"), (round(float(x), 4) for x in lengths)))
    lattice.update(zip(("alpha", "beta", "gamma"), (round(float(x), 3) for x in angles)))
    lattice["volume"] = round(abs(float(np.linalg.det(crystal.lattice))), 3)
    return {"lattice": lattice, "density": round(density(crystal), 4), "nsites": len(crystal)}

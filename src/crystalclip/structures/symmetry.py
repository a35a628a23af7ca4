"""Space group and crystal system of a Crystal, cheaply: what the source says, else what the CIF
declares, else spglib."""
from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

from .crystal import Crystal

SPGLIB_MAX_SITES = 200  # a 500-atom MOF costs spglib ~20 ms; such cells are P1 as declared
CRYSTAL_SYSTEMS = [(2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"),
                   (167, "trigonal"), (194, "hexagonal"), (230, "cubic")]


def spacegroup_number(crystal: Crystal, known=None) -> int:
    """`known` (a source's value), else the CIF's declared number or symbol (unless P1), else
    spglib's on the majority species (symprec 0.1); above SPGLIB_MAX_SITES sites, 1."""
    for value in (known, crystal.metadata.get("spacegroup_number")):
        if value is not None and value == value and int(value) > 1:
            return int(value)
    symbol = crystal.metadata.get("spacegroup_symbol")
    if symbol:
        import gemmi

        group = gemmi.find_spacegroup_by_name(symbol.replace("_", " ").strip())
        if group is not None and group.number > 1:
            return group.number
    if len(crystal) > SPGLIB_MAX_SITES:
        return 1
    import spglib

    numbers = [max(site, key=site.get) for site in crystal.species]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spglib's deprecation notice about its error handling
        found = spglib.get_symmetry_dataset((crystal.lattice, crystal.frac_coords, numbers), symprec=0.1)
    return int(found.number) if found is not None else 1


def crystal_system(number) -> str | None:
    """The crystal system of an international space-group number (1-230), None if unknown."""
    if number is None or number != number:
        return None
    for last, name in CRYSTAL_SYSTEMS:
        if 1 <= int(number) <= last:
            return name
    return None


# --------------------------------------------------------------------------------------------------
# the symmetry and lattice channel's inputs (models/symmetry.py embeds them)

CENTERINGS = "PABCIFR"
NUM_SYMMETRY_FEATURES = 7 + len(CENTERINGS) + 9 + 4  # crystal system, centring, lattice shape, Wyckoff statistics


def symmetry_features(crystal: Crystal, symprec: float = 0.1) -> tuple[int, np.ndarray]:
    """(space-group number, NUM_SYMMETRY_FEATURES float32 values) of a structure, from spglib on the
    majority species: crystal system and lattice centring one-hot; the conventional cell's shape
    (sorted a:b:c over c, angle cosines, log volume per atom, density, log atoms per cell, log
    symmetry operations); Wyckoff statistics (fraction of sites on special positions, distinct orbits
    and letters per site, mean orbit multiplicity). Above SPGLIB_MAX_SITES sites, or where spglib
    finds nothing: the declared space group (else P1) and the cell as given."""
    import spglib

    n = len(crystal)
    lattice = crystal.lattice
    number, ops, special, orbits, letters, multiplicity = 1, 1, 0.0, float(n), float(n), 1.0
    if 0 < n <= SPGLIB_MAX_SITES:
        numbers = [max(site, key=site.get) for site in crystal.species]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = spglib.get_symmetry_dataset((crystal.lattice, crystal.frac_coords, numbers), symprec=symprec)
        if found is not None:
            number, ops, lattice = int(found.number), len(found.rotations), np.asarray(found.std_lattice)
            special = float(np.mean([s.replace(".", "") != "1" for s in found.site_symmetry_symbols]))
            orbits = float(len(set(found.equivalent_atoms.tolist())))
            letters = float(len(set(found.wyckoffs)))
            multiplicity = n / orbits
    else:
        number = spacegroup_number(crystal)
    system = [name for _, name in CRYSTAL_SYSTEMS].index(crystal_system(number))
    symbol = _spacegroup_symbol(number)
    lengths = np.linalg.norm(lattice, axis=1)
    a, b, c = np.sort(lengths)
    cosines = [float(np.dot(lattice[i], lattice[j]) / (lengths[i] * lengths[j])) for i, j in ((1, 2), (0, 2), (0, 1))]
    volume = abs(float(np.linalg.det(crystal.lattice)))
    site, z, occ = crystal.species_arrays()
    mass = float((occ * _masses()[z]).sum())
    values = np.zeros(NUM_SYMMETRY_FEATURES, np.float32)
    values[system] = 1.0
    values[7 + CENTERINGS.index(symbol[0]) if symbol[0] in CENTERINGS else 7] = 1.0
    shape = [a / c, b / c, *cosines, np.log(volume / max(n, 1)), mass / volume * 1.66053906660 / 5.0,
             np.log(max(n, 1)) / 5.0, np.log(ops) / 4.0]
    values[14:23] = shape
    values[23:] = [special, orbits / max(n, 1), letters / max(n, 1), np.log(multiplicity) / 4.0]
    return number, values


@lru_cache(maxsize=1)
def _masses() -> np.ndarray:
    import gemmi

    return np.array([0.0] + [gemmi.Element(z).weight for z in range(1, 119)])


@lru_cache(maxsize=None)
def _spacegroup_symbol(number: int) -> str:
    import gemmi

    return gemmi.find_spacegroup_by_number(int(number)).hm

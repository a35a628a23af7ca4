"""Space group and crystal system of a Crystal, cheaply: what the source says, else what the CIF
declares, else spglib."""
from __future__ import annotations

import warnings

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

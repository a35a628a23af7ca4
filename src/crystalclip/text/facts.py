"""The facts about one structure (``analyze`` -> ``Facts``), computed once for every phrasing.

Symmetry: the CIF's declared space group, else spglib on the majority species (symprec 0.1), the
same rule as ``structures.symmetry.spacegroup_number`` so texts agree with the dataset's column; the
lattice parameters of spglib's conventional cell (MP's CIFs are P1 primitive cells); Pearson symbol
and formula units. Above SPGLIB_MAX_SITES sites, no symmetry. The structure type comes from
``text.prototypes``; bonds, coordination and dimensionality from ``text.bonding`` and
``text.sites``; the composition class from ``text.chemistry``; then density and volume per atom.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..structures.crystal import Crystal
from ..structures.properties import (
    AMU_PER_A3_TO_G_PER_CM3,
    lattice_parameters,
    spacegroup_symbols,
)
from ..structures.symmetry import SPGLIB_MAX_SITES, crystal_system, spacegroup_number
from .bonding import bond_arrays, components, orientation
from .chemistry import Composition, composition_class, element_table
from .sites import Kind, Polyhedron, coordination, polyhedra_of, site_kinds

__all__ = ["STAGES", "Facts", "analyze", "lattice_parameters"]

STAGES = ("symmetry", "prototype", "bonds", "composition", "coordination", "polyhedra", "dimensionality",
          "density")
SYMPREC = 0.1


# --------------------------------------------------------------------------------------------------
# symmetry and lattice


def _declared(crystal: Crystal) -> bool:
    """Whether the CIF declares a space group other than P1 (then spacegroup_number needs no spglib)."""
    number = crystal.metadata.get("spacegroup_number")
    if number is not None and number == number and int(number) > 1:
        return True
    symbol = crystal.metadata.get("spacegroup_symbol")
    if symbol:
        import gemmi

        group = gemmi.find_spacegroup_by_name(symbol.replace("_", " ").strip())
        return group is not None and group.number > 1
    return False


def _symmetry(crystal: Crystal, main_z: np.ndarray):
    """(space group number or None when not analysed, lattice to describe, sites in that cell,
    spglib dataset or None). A declared space group keeps the cell as given; spglib still runs
    (its orbits and Wyckoff sites serve the prototype and the geometry sampling)."""
    dataset = None
    if len(crystal) <= SPGLIB_MAX_SITES:
        import spglib

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # spglib's deprecation notice about its error handling
            dataset = spglib.get_symmetry_dataset((crystal.lattice, crystal.frac_coords, main_z.tolist()),
                                                  symprec=SYMPREC)
    if _declared(crystal):
        return spacegroup_number(crystal), crystal.lattice, len(crystal), dataset
    if len(crystal) > SPGLIB_MAX_SITES:
        return None, crystal.lattice, len(crystal), None
    if dataset is None:
        return 1, crystal.lattice, len(crystal), None
    return int(dataset.number), np.asarray(dataset.std_lattice), len(dataset.std_types), dataset


# --------------------------------------------------------------------------------------------------
# the facts


@dataclass
class Facts:
    """What the describer found about one structure; ``render`` phrases it."""

    formula: str
    n_sites: int
    number: int | None  # space group, None when not analysed
    symbol: str | None
    system: str | None
    lattice: np.ndarray  # the cell whose parameters are given (spglib's conventional one when analysed)
    cell_sites: int
    pearson: str | None
    formula_units: int | None  # in the conventional cell
    prototype: tuple[str, str, str | None] | None  # (AFLOW label, name, formula-free name)
    composition: Composition
    kinds: list[Kind]
    polyhedra: list[Polyhedron]
    dims: list[tuple[int, str | None]]  # (dimensionality, '(001)' plane of layers / '[001]' chains), highest first
    density: float  # g/cm³
    volume_per_atom: float  # Å³
    bonds_from: str  # "cif" (the file's bond loop), "neighbours" (the neighbour rule), "cif+neighbours"

    def key(self) -> str:
        """What a seed is combined with: the same structure and seed give the same text."""
        return f"{self.formula}|{self.number}|{self.n_sites}|{self.cell_sites}|{self.density:.3f}"


class _Clock:
    def __init__(self, timings: dict | None):
        self.timings = timings
        self.last = time.perf_counter()

    def __call__(self, stage: str) -> None:
        if self.timings is not None:
            now = time.perf_counter()
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.last
            self.last = now


def analyze(crystal: Crystal, bonds=None, prototype: bool = True, timings: dict | None = None) -> Facts:
    """The facts about ``crystal`` (milliseconds for an ordinary cell).

    ``bonds``: the CIF's bonds (``structures.bonds.read_cif_bonds(cif, crystal)``) or None for the
    neighbour rule. ``prototype=False`` skips the structure-type match. ``timings``: a dict that
    collects seconds per stage (``STAGES``)."""
    clock = _Clock(timings)
    symbols, masses, chi, _ = element_table()
    n = len(crystal)
    site, z, occ = crystal.species_arrays()
    occupancy = np.bincount(site, weights=occ, minlength=n)
    main_z = np.array([max(s, key=s.get) for s in crystal.species], np.int64)
    clock("composition")

    number, lattice, cell_sites, dataset = _symmetry(crystal, main_z)
    equivalent = np.asarray(dataset.equivalent_atoms) if dataset is not None else None
    analysed = dataset is not None and number is not None and int(dataset.number) == number
    pearson = formula_units = None
    if analysed:
        from .prototypes import pearson_symbol

        pearson = pearson_symbol(dataset)
        if crystal.is_ordered:
            per_element = np.bincount(main_z)
            units = math.gcd(*[int(c) for c in per_element[per_element > 0]])
            formula_units = round(units * len(dataset.std_types) / n)
    clock("symmetry")

    found = None
    if prototype and dataset is not None:
        from .prototypes import match_prototype

        match = match_prototype(crystal.lattice, crystal.frac_coords, main_z, dataset)
        if match is not None:
            amounts = np.bincount(z, weights=occ)
            present = np.nonzero(amounts > 1e-6)[0]
            anti = int(present[np.argmax(amounts[present])]) != int(present[np.argmax(chi[present])])
            name, free = match.names(anti)
            found = (match.label, name, free)
    clock("prototype")

    i, j, shift, d, vector, source = bond_arrays(crystal, main_z, occupancy, bonds)
    starts = np.searchsorted(i, np.arange(n + 1))
    clock("bonds")

    formula = crystal.reduced_formula()
    present = sorted({int(x) for x in z.tolist()})
    composition = composition_class(present, chi, main_z, i, j)
    clock("composition")

    kinds, kind_of = site_kinds(crystal, symbols, chi, main_z, occupancy, composition)
    coordination(kinds, kind_of, occupancy, equivalent, i, j, d, vector, starts)
    clock("coordination")

    polyhedra = polyhedra_of(kinds, kind_of, equivalent, j, shift, starts) if composition.ionic else []
    clock("polyhedra")

    dims: dict[int, str | None] = {}
    for dim, translations in components(n, i, j, shift):
        if dim not in dims or dims[dim] is None:
            dims[dim] = orientation(dim, translations, dataset if analysed else None)
    clock("dimensionality")

    mass = float((occ * masses[np.minimum(z, len(masses) - 1)]).sum())
    volume = abs(float(np.linalg.det(crystal.lattice)))
    density = mass / volume * AMU_PER_A3_TO_G_PER_CM3
    clock("density")
    return Facts(
        formula=formula, n_sites=n, number=number,
        symbol=spacegroup_symbols()[number] if number is not None else None,
        system=crystal_system(number) if number is not None else None,
        lattice=np.asarray(lattice), cell_sites=cell_sites, pearson=pearson, formula_units=formula_units,
        prototype=found, composition=composition, kinds=kinds, polyhedra=polyhedra,
        dims=sorted(dims.items(), reverse=True), density=density, volume_per_atom=volume / max(float(occ.sum()), 1e-9),
        bonds_from=source,
    )

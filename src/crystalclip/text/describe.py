"""A structure -> sentences about it, from the structure alone (CLaC's synthetic narratives).

CLaC (Park et al. 2025) pairs crystals with robocrystallographer's descriptions. robocrys takes
seconds per structure (CrystalNN bonds, polyhedral connectivity, oxidation states): days at 150k
structures. This template describer states the same kinds of facts from cheap analyses
(benchmarks/describe.py times each stage):

- formula (pymatgen's reduced formula, occupancies counted) and a composition class: oxide,
  sulfide, chloride (a halide), nitride, hydride, intermetallic, phosphate / silicate / carbonate
  (an oxygen-bonded non-metal centre beside other cations), oxyfluoride, hydroxide, ..., with the
  families of the cations ("a ternary oxide of an alkaline-earth metal and a transition metal").
- crystal system and space group: the CIF's declared one, else spglib on the majority species
  (symprec 0.1), the same rule as ``structures.symmetry.spacegroup_number`` so texts agree with the
  dataset's column; the lattice parameters of spglib's conventional cell (MP's CIFs are P1
  primitive cells); Bravais lattice, Pearson symbol, formula units. Above SPGLIB_MAX_SITES sites,
  no symmetry.
- structure type: ``text.prototypes`` looks up a setting-free Wyckoff signature of the same spglib
  dataset in ~300 AFLOW and common prototypes and confirms the candidate with StructureMatcher
  (rock salt, perovskite, spinel, Heusler, garnet, olivine, ...).
- coordination of each distinct site kind (element, or "Fe/Mg" for a mixed site), bond lengths, a
  geometry name (octahedral, tetrahedral, ...: trans pairs and a few angle checks), and for cations
  surrounded by anions the polyhedra and how they share corners, edges or faces. Bonds come from
  the CIF's ``_geom_bond`` loop when the caller passes them (``structures.bonds.read_cif_bonds``:
  the MP CIFs carry CrystalNN's), else from a neighbour rule (``text.bonding``: MinimumDistanceNN's
  shells, made mutual, with exceptions for H and covalent non-metals). Counts are weighted by the
  neighbours' occupancies.
- dimensionality of the bonded network (Larsen et al. 2019: the rank of the lattice translations
  that close cycles in each component; ~0.2 ms), with the Miller plane of layers and the direction
  of chains in the conventional cell; density, volume per atom, sites per cell.

``describe(crystal, seed=None, formula_free=False, bonds=None)``: with ``seed=None`` one fixed
phrasing in a fixed order (the canonical text); with an integer seed each fact is phrased by one of
several templates and the sentences are shuffled, deterministically for a structure and seed. The
formula-free form names no formula, element or element symbol ("a transition-metal cation in
octahedral coordination by oxide ions"; space-group symbols that read as symbols, "Pm-3m", are
written "P m-3m"): ``text.masking.mask_formulas`` leaves it unchanged. The same seed gives the same
choices in both forms, so a formula-free text is its full text with the chemistry left out.
``analyze`` computes the facts once and ``render`` phrases them, so several seeds and both forms
cost one analysis (``describe_both`` returns the two forms of one seed). On random MP structures
with their CIF bonds: ~5.5 ms a structure, parsing and two renderings included (benchmarks/describe.py).

``describe_robocrys`` gives robocrys's text when it is installed (``pip install robocrys``).

Layout: this module is the facade. ``text.chemistry`` (element tables, families, composition
class), ``text.bonding`` (bonds, geometry, dimensionality), ``text.sites`` (site kinds,
coordination, polyhedra), ``text.facts`` (symmetry, lattice, ``analyze`` -> ``Facts``),
``text.phrasing`` (``render``); ``text.prototypes`` (structure types) sits below ``text.facts``.
Imports go one way: chemistry <- bonding <- sites <- facts <- phrasing <- describe.
"""
from __future__ import annotations

import warnings

from ..structures.crystal import Crystal
from .bonding import dimensionalities, geometry, neighbour_bonds
from .chemistry import element_family
from .facts import STAGES, Facts, analyze, lattice_parameters
from .phrasing import VARIANTS, render
from .sites import MAX_KINDS

__all__ = [
    "DESCRIBERS",
    "MAX_KINDS",
    "STAGES",
    "VARIANTS",
    "Facts",
    "analyze",
    "describe",
    "describe_both",
    "describe_robocrys",
    "dimensionalities",
    "element_family",
    "geometry",
    "lattice_parameters",
    "neighbour_bonds",
    "render",
]

DESCRIBERS = ("template", "robocrys")


def describe(crystal: Crystal, seed: int | None = None, formula_free: bool = False, bonds=None) -> str:
    """Sentences about ``crystal`` (see the module docstring): symmetry, lattice, structure type,
    composition class, coordination and bond lengths, polyhedra, dimensionality, density.

    ``seed``: None for the canonical text, an integer for a varied, shuffled one. ``formula_free``:
    no formula, element names or symbols. ``bonds``: the CIF's bonds
    (``structures.bonds.read_cif_bonds(cif_text, crystal)``), else the neighbour rule."""
    return render(analyze(crystal, bonds=bonds), seed=seed, formula_free=formula_free)


def describe_both(crystal: Crystal, seed: int | None = None, bonds=None) -> tuple[str, str]:
    """(full text, formula-free text) with the same phrasing choices, from one analysis."""
    facts = analyze(crystal, bonds=bonds)
    return render(facts, seed=seed), render(facts, seed=seed, formula_free=True)


def describe_robocrys(crystal: Crystal) -> str:
    """robocrystallographer's description (Ganose & Jain 2019), seconds per structure."""
    try:
        from robocrys import StructureCondenser, StructureDescriber
    except ImportError as error:
        raise ImportError(f"the robocrys describer needs robocrys: pip install robocrys ({error})") from error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure = crystal.to_pymatgen()
        structure.properties = {}
        condensed = StructureCondenser().condense_structure(structure)
        return StructureDescriber().describe(condensed)

"""A structure -> a few sentences about it, from the structure alone (CLaC's synthetic narratives).

CLaC (Park et al. 2025) pairs crystals with robocrystallographer's descriptions. robocrys takes
seconds per structure (CrystalNN bonds, polyhedral connectivity, oxidation states): days for a
~30k-structure dataset on two cores. The default describer is a template over facts that together
cost ~2-3 ms (benchmarks/describe.py: ~1,100x robocrys on the same structures):

- formula (pymatgen's reduced formula, occupancies counted)
- space group: the CIF's declared one, else spglib on the majority species (symprec 0.1), the same
  rule as ``structures.symmetry.spacegroup_number`` so texts agree with the dataset's column; the
  lattice parameters of spglib's conventional cell (mp40's CIFs are primitive cells). spglib is
  about half of the time on a P1 cell. Above SPGLIB_MAX_SITES undeclared sites, no space group.
- coordination of each distinct site kind (element, or "Fe/Mg" for a mixed site): two sites are
  bonded when either lies within (1 + TOLERANCE) x the shortest distance from the other (pymatgen's
  MinimumDistanceNN rule, made mutual as in its bonded StructureGraph, so O in SrTiO3 has its two Ti
  and four Sr). On 80 mp40 cells this agrees with CrystalNN on 64% of sites, better than the
  one-sided rule (53%) or a wider tolerance (0.2: 61%); mp40 is mostly intermetallics, whose
  coordination is ill-defined anyway. Two exceptions keep molecules and frameworks whole: X-H bonds
  are much shorter than an atom's other bonds, so H does not set the scale of a non-H atom unless no
  non-H atom is within covalent reach (C in methane, O in ice); and two non-metals within their
  covalent radii + COVALENT_SLACK are bonded (the CSD's rule: a carboxylate's C-C bond is 1.2x its
  C-O bonds), as is H to anything. Counts are weighted by the neighbours' occupancies (eight
  half-occupied O neighbours make 4-coordination). A geometry name (octahedral, tetrahedral, ...)
  comes from the number of trans (near-180 degree) neighbour pairs and a few angle checks.
- dimensionality of the bonded network (Larsen et al. 2019: the rank of the lattice translations
  that close cycles in each connected component); a breadth-first walk, ~0.2 ms
- density and sites per cell

``describe_robocrys`` gives robocrys's text when it is installed (``pip install robocrys``).
"""
from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..graphs import MIN_DISTANCE
from ..structures.crystal import Crystal
from ..structures.symmetry import SPGLIB_MAX_SITES, crystal_system, spacegroup_number

__all__ = ["describe", "describe_robocrys", "dataset_descriptions", "DESCRIBERS"]

DESCRIBERS = ("template", "robocrys")
TOLERANCE = 0.1  # neighbours within (1 + TOLERANCE) x the shortest distance (MinimumDistanceNN's default)
COVALENT_SLACK = 0.4  # Å over the covalent radii sum for a covalent bond (the CSD's rule)
NONMETALS = (1, 5, 6, 7, 8, 9, 14, 15, 16, 17, 33, 34, 35, 52, 53)  # H B C N O F Si P S Cl As Se Br Te I
REACH_SLACK = 0.5  # Å over the covalent radii sum: a non-H atom further away cannot set the scale
SEARCH_RADIUS, MAX_RADIUS = 4.0, 8.0  # Å; the neighbour search widens up to MAX_RADIUS when needed
TRANS_COS = math.cos(math.radians(155.0))  # two neighbours at > 155 degrees are trans
MAX_KINDS = 8  # site kinds described; a MOF's few elements fit, a high-entropy alloy's tail is cut
MAX_ENVIRONMENTS = 2  # environments named per site kind
SAMPLE_PER_ENVIRONMENT = 4  # sites whose angles name an environment's geometry (majority vote)
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660
_NUMBER_WORDS = {0: "zero", 1: "one", 2: "two", 3: "three"}


# --------------------------------------------------------------------------------------------------
# element tables, built once


@lru_cache(maxsize=1)
def _elements() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
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


@lru_cache(maxsize=1)
def _spacegroup_symbols() -> dict[int, str]:
    """International short symbols in spglib's (and pymatgen's) spelling: 'P6_3/mmc'."""
    import spglib

    symbols: dict[int, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spglib's deprecation notice about its error handling
        for hall in range(1, 531):
            found = spglib.get_spacegroup_type(hall)
            symbols.setdefault(int(found.number), found.international_short)
    return symbols


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


def _symmetry(crystal: Crystal) -> tuple[int | None, np.ndarray, int, np.ndarray | None]:
    """(space group number or None when not analysed, lattice to describe, sites in that cell,
    spglib's equivalent_atoms or None)."""
    if _declared(crystal):
        return spacegroup_number(crystal), crystal.lattice, len(crystal), None
    if len(crystal) > SPGLIB_MAX_SITES:
        return None, crystal.lattice, len(crystal), None
    import spglib

    numbers = [max(site, key=site.get) for site in crystal.species]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spglib's deprecation notice about its error handling
        found = spglib.get_symmetry_dataset((crystal.lattice, crystal.frac_coords, numbers), symprec=0.1)
    if found is None:
        return 1, crystal.lattice, len(crystal), None
    return int(found.number), np.asarray(found.std_lattice), len(found.std_types), np.asarray(found.equivalent_atoms)


def lattice_parameters(lattice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b, c) in Å and (alpha, beta, gamma) in degrees of a 3x3 row-vector lattice."""
    lengths = np.linalg.norm(lattice, axis=1)
    angles = []
    for p, q in ((1, 2), (0, 2), (0, 1)):
        cos = float(lattice[p] @ lattice[q]) / (lengths[p] * lengths[q])
        angles.append(math.degrees(math.acos(max(-1.0, min(1.0, cos)))))
    return lengths, np.array(angles)


def _lattice_text(lattice: np.ndarray) -> str:
    """'a = b = 3.20 Å, c = 5.12 Å, γ = 120°': equal values said once, right angles left out."""
    lengths, angles = lattice_parameters(lattice)
    parts = _grouped(["a", "b", "c"], [f"{x:.2f}" for x in lengths], " Å")
    shown = [(n, f"{x:.1f}".removesuffix(".0")) for n, x in zip("αβγ", angles) if abs(x - 90.0) > 0.05]
    if shown:
        parts += _grouped([n for n, _ in shown], [v for _, v in shown], "°")
    return ", ".join(parts)


def _grouped(names: list[str], values: list[str], unit: str) -> list[str]:
    groups: dict[str, list[str]] = {}
    for name, value in zip(names, values):
        groups.setdefault(value, []).append(name)
    return [" = ".join(group) + f" = {value}{unit}" for value, group in groups.items()]


# --------------------------------------------------------------------------------------------------
# bonds


def _pairs(crystal: Crystal, radius: float):
    """(i, j, shift, d, vector) of every pair within ``radius`` (one entry per periodic image)."""
    import vesin

    frac = np.asarray(crystal.frac_coords, dtype=np.float64)
    frac = frac - np.floor(frac)
    frac[frac >= 1.0] = 0.0
    lattice = np.ascontiguousarray(crystal.lattice, dtype=np.float64)
    nl = vesin.NeighborList(cutoff=float(radius), full_list=True, n_threads=1)
    i, j, shift, d, vector = nl.compute(frac @ lattice, lattice, True, "ijSdD")
    return i.astype(np.int64), j.astype(np.int64), shift.astype(np.int64), d, vector


def bonds(crystal: Crystal, main_z: np.ndarray, occupancy: np.ndarray):
    """Directed bonds (i, j, shift, d, vector from i to j), sorted by centre i, by the rule in the
    module docstring."""
    _, _, _, radii = _elements()
    rad = radii[np.minimum(main_z, len(radii) - 1)]
    is_h = main_z == 1
    nonmetal = np.isin(main_z, NONMETALS)
    n = len(main_z)
    radius = SEARCH_RADIUS
    while True:
        i, j, shift, d, vector = _pairs(crystal, radius)
        # overlapping atoms, and partially occupied alternatives of a split site, are not bonds
        keep = (d > MIN_DISTANCE) & ~((occupancy[i] + occupancy[j] <= 1.0 + 1e-3) & (d < 1.5))
        i, j, shift, d, vector = i[keep], j[keep], shift[keep], d[keep], vector[keep]
        to_heavy = ~is_h[j]
        scale_heavy = np.full(n, np.inf)
        np.minimum.at(scale_heavy, i[to_heavy], d[to_heavy])
        scale_any = np.full(n, np.inf)
        np.minimum.at(scale_any, i, d)
        in_reach = np.zeros(n, bool)
        in_reach[i[to_heavy & (d <= rad[i] + rad[j] + REACH_SLACK)]] = True
        # a non-H atom takes its scale from non-H atoms unless only H is near (a molecule's C or O)
        by_heavy = ~is_h & np.isfinite(scale_heavy) & (in_reach | (scale_heavy <= scale_any))
        scale = np.where(by_heavy, scale_heavy, scale_any)
        # the search must reach every shell, and every non-H atom that could be in reach
        needed = (1.0 + TOLERANCE) * scale
        needed = np.where(by_heavy | is_h, needed, np.maximum(needed, rad + rad.max() + REACH_SLACK))
        if radius >= MAX_RADIUS or needed.max() <= radius:
            break
        radius = min(MAX_RADIUS, max(float(needed.max()), 1.5 * radius))
    covalent = d <= rad[i] + rad[j] + COVALENT_SLACK
    in_shell = d <= (1.0 + TOLERANCE) * scale[i]
    to_h = is_h[j] & by_heavy[i]  # H is not in the shell of an atom scaled by non-H ones ...
    bond = np.where(to_h, covalent, in_shell | (covalent & nonmetal[i] & nonmetal[j]))  # ... but bonded
    i, j, shift, d, vector = i[bond], j[bond], shift[bond], d[bond], vector[bond]
    # a bond is mutual: j in the shell of i bonds i to j too (the anion sees every cation that sees it)
    i, j, d = np.concatenate([i, j]), np.concatenate([j, i]), np.tile(d, 2)
    shift, vector = np.concatenate([shift, -shift]), np.concatenate([vector, -vector])
    span = int(np.abs(shift).max(initial=0)) + 1
    key = ((i * n + j) * (2 * span + 1) + shift[:, 0] + span) * (2 * span + 1) + shift[:, 1] + span
    key = key * (2 * span + 1) + shift[:, 2] + span
    _, first = np.unique(key, return_index=True)  # sorted by key, so by centre i
    return i[first], j[first], shift[first], d[first], vector[first]


def geometry(vectors: np.ndarray) -> str | None:
    """A name for the polyhedron of neighbour vectors (n, 3), or None when no simple one fits."""
    cn = len(vectors)
    if cn < 2 or cn > 12:
        return None
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = np.clip(unit @ unit.T, -1.0, 1.0)
    upper = cos[np.triu_indices(cn, 1)]
    angles = np.degrees(np.arccos(upper))
    trans = int((upper < TRANS_COS).sum())
    near = lambda a, w=12.0: np.abs(angles[:, None] - np.atleast_1d(a)).min(axis=1) < w  # noqa: E731
    if cn == 2:
        return "linear" if trans else "bent"
    if cn == 3:
        return "trigonal planar" if angles.sum() > 350.0 else "trigonal pyramidal"
    if cn == 4:
        if trans == 2:
            return "square planar"
        return "tetrahedral" if trans == 0 and near(109.5, 15.0).all() else None
    if cn == 5:
        return {2: "square pyramidal", 1: "trigonal bipyramidal"}.get(trans)
    if cn == 6:
        if trans == 3:
            return "octahedral"
        return "trigonal prismatic" if trans == 0 and near([80.0, 136.0], 15.0).all() else None
    if cn == 8:
        return "cubic" if trans == 4 and near([70.5, 109.5, 180.0]).all() else None
    if cn == 12:
        if trans == 6:
            return "cuboctahedral" if near([60.0, 90.0, 120.0, 180.0], 8.0).all() else (
                "icosahedral" if near([63.4, 116.6, 180.0], 8.0).all() else None)
        return "anticuboctahedral" if trans == 3 and near([60.0, 90.0, 109.5, 120.0, 146.4, 180.0], 8.0).all() else None
    return None


def dimensionalities(n: int, i: np.ndarray, j: np.ndarray, shift: np.ndarray) -> list[int]:
    """Dimensionality (0-3) of each connected component of the bonded network (Larsen et al. 2019):
    place every site of a component by walking the bonds breadth-first; a bond that then lands in
    another cell closes a cycle through the lattice, and the rank of those translations is the
    dimension. Bonds must be mutual and sorted by i (as ``bonds`` returns them)."""
    starts = np.searchsorted(i, np.arange(n + 1)).tolist()
    dst, steps = j.tolist(), shift.tolist()
    component, offset = [-1] * n, [(0, 0, 0)] * n
    count = 0
    for root in range(n):  # plain Python: ~1 µs a bond, less than any graph library's set-up
        if component[root] >= 0:
            continue
        component[root] = count
        queue = [root]
        for u in queue:
            ox, oy, oz = offset[u]
            for e in range(starts[u], starts[u + 1]):
                v = dst[e]
                if component[v] < 0:
                    component[v] = count
                    sx, sy, sz = steps[e]
                    offset[v] = (ox + sx, oy + sy, oz + sz)
                    queue.append(v)
        count += 1
    if count == 0:
        return []
    offsets, label = np.array(offset, np.int64), np.array(component, np.int64)
    cycles = offsets[i] + shift - offsets[j]
    closing = cycles.any(axis=1)
    dims = [0] * count
    for c in np.unique(label[i[closing]]).tolist():
        translations = np.unique(cycles[closing & (label[i] == c)], axis=0)
        dims[c] = int(np.linalg.matrix_rank(translations))
    return dims


# --------------------------------------------------------------------------------------------------
# the template


def describe(crystal: Crystal) -> str:
    """A few sentences about ``crystal``: formula, symmetry, lattice, coordination, dimensionality,
    density. Milliseconds for an ordinary cell; a large cell names geometries from a few sites."""
    symbols, masses, chi, _ = _elements()
    n = len(crystal)
    site, z, occ = crystal.species_arrays()
    occupancy = np.bincount(site, weights=occ, minlength=n)
    main_z = np.array([max(s, key=s.get) for s in crystal.species], np.int64)
    kinds = ["/".join(symbols[k] for k in sorted(s, key=lambda k: -s[k])) for s in crystal.species]

    formula = crystal.reduced_formula()
    number, lattice, cell_sites, equivalent = _symmetry(crystal)
    if number is None:
        first = f"{formula} has a {n}-site cell (symmetry not analysed) with {_lattice_text(lattice)}."
    else:
        first = (f"{formula} crystallizes in the {crystal_system(number)} {_spacegroup_symbols()[number]} "
                 f"space group (No. {number}) with {_lattice_text(lattice)}.")
    sentences = [first]

    i, j, shift, d, vector = bonds(crystal, main_z, occupancy)
    sentences += _coordination(kinds, main_z, occupancy, chi, equivalent, i, j, d, vector)
    sentences.append(_dimensionality_text(dimensionalities(n, i, j, shift)))

    mass = float((occ * masses[np.minimum(z, len(masses) - 1)]).sum())
    volume = abs(float(np.linalg.det(crystal.lattice)))
    density = mass / volume * AMU_PER_A3_TO_G_PER_CM3
    site_word = "site" if cell_sites == 1 else "sites"
    sentences.append(f"The density is {density:.2f} g/cm³, with {cell_sites} {site_word} in the cell.")
    return " ".join(sentences)


def _coordination(kinds, main_z, occupancy, chi, equivalent, i, j, d, vector) -> list[str]:
    """One sentence per site kind (cations first): its commonest environments."""
    n = len(kinds)
    kind_names, kind_of = np.unique(np.array(kinds, dtype=object), return_inverse=True)
    n_kinds = len(kind_names)
    # per site, how many neighbours of each kind (occupancy-weighted, rounded, at least one when
    # bonded): an environment is a (kind, neighbour counts) row
    weighted = np.bincount(i * n_kinds + kind_of[j], weights=occupancy[j], minlength=n * n_kinds).reshape(n, n_kinds)
    counts = np.rint(weighted).astype(np.int64)
    lost = (counts.sum(axis=1) == 0) & (weighted.sum(axis=1) > 0)
    counts[lost, weighted[lost].argmax(axis=1)] = 1
    rows = np.ascontiguousarray(np.concatenate([kind_of[:, None], counts], axis=1))
    as_bytes = rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel()  # rows as scalars: fast unique
    _, first, env_of, env_size = np.unique(as_bytes, return_index=True, return_inverse=True, return_counts=True)
    environments, env_of = rows[first], env_of.ravel()
    # mean bond length per (environment, neighbour kind)
    pair = env_of[i] * n_kinds + kind_of[j]
    total = np.bincount(pair, weights=d, minlength=len(environments) * n_kinds)
    number = np.bincount(pair, minlength=len(environments) * n_kinds)
    mean_d = (total / np.maximum(number, 1)).reshape(len(environments), n_kinds)
    starts = np.searchsorted(i, np.arange(n + 1))  # bonds() sorts by centre

    mean_chi = {k: float(np.mean(chi[np.minimum(main_z[kind_of == k], len(chi) - 1)])) for k in range(n_kinds)}
    sentences = []
    for k in sorted(range(n_kinds), key=lambda k: (mean_chi[k], kind_names[k]))[:MAX_KINDS]:
        mine = np.nonzero(environments[:, 0] == k)[0]
        mine = mine[np.argsort(-env_size[mine], kind="stable")]
        phrases = []
        for e in mine[:MAX_ENVIRONMENTS]:
            sites = np.nonzero(env_of == e)[0]
            if equivalent is not None:  # one site per symmetry orbit is enough
                sites = np.unique(equivalent[sites])
            sample = sites[np.linspace(0, len(sites) - 1, min(len(sites), SAMPLE_PER_ENVIRONMENT)).astype(int)]
            # a geometry only for fully occupied neighbours: half-occupied images make no polyhedron
            names = [geometry(vector[starts[s]:starts[s + 1]]) if (occupancy[j[starts[s]:starts[s + 1]]] > 0.9).all()
                     else None for s in sample]
            shape = max(set(names), key=names.count) if names else None
            phrases.append(_environment_phrase(kind_names[k], kind_names, environments[e, 1:], mean_d[e], shape))
        more = len(mine) - MAX_ENVIRONMENTS
        if more > 0:
            phrases.append(f"{more} other environment{'s' if more > 1 else ''}")
        name = str(kind_names[k])
        partial = bool((occupancy[kind_of == k] < 0.99).any())
        if "/" in name:
            subject = f"Mixed {name} sites are" if (kind_of == k).sum() > 1 else f"The mixed {name} site is"
        elif partial:
            subject = f"Partially occupied {name} sites are"
        else:
            subject = f"{name} is"
        sentences.append(f"{subject} {_join(phrases)}.")
    if n_kinds > MAX_KINDS:
        sentences.append(f"{n_kinds - MAX_KINDS} more site kinds are not described.")
    return sentences


def _environment_phrase(name, kind_names, counts, mean_d, shape) -> str:
    cn = int(counts.sum())
    if cn == 0:
        return f"isolated (no neighbour within {MAX_RADIUS:g} Å)"
    present = [(int(c), str(kind_names[k]), float(mean_d[k])) for k, c in enumerate(counts) if c]
    present.sort(key=lambda t: (-t[0], t[1]))
    by = present[0][1] if len(present) == 1 else _join([f"{c} {other}" for c, other, _ in present])
    details = ([shape] if shape else []) + [f"{name}–{other} {dist:.2f} Å" for _, other, dist in present[:3]]
    return f"{cn}-coordinated by {by} ({', '.join(details)})"


def _dimensionality_text(dims: list[int]) -> str:
    kinds = {3: "framework", 2: "layers", 1: "chains", 0: "molecules or clusters"}
    present = sorted(set(dims), reverse=True)
    if present == [3]:
        return "The bonded network is three-dimensional."
    if len(present) == 1:
        return f"The structure is {_NUMBER_WORDS[present[0]]}-dimensional ({kinds[present[0]]})."
    return "The structure combines " + _join(
        [f"{_NUMBER_WORDS[dim]}-dimensional {kinds[dim]}" for dim in present]) + "."


def _join(items: list[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------------------------------
# robocrys


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


# --------------------------------------------------------------------------------------------------
# a dataset


def _describe_row(args: tuple[str, str, str]) -> tuple[str, str | None, str | None]:
    """(id, text, None) or (id, None, reason): one pairs.parquet row, in a worker process."""
    from ..structures import parse_cif

    id_, cif, describer = args
    try:
        crystals = parse_cif(cif, id_.rsplit("#", 1)[0])
        # data/build.py names a structure from a several-block CIF "<entry id>#<block name>"
        crystal = next((c for c in crystals if c.id == id_), crystals[0])
        text = describe(crystal) if describer == "template" else describe_robocrys(crystal)
        return id_, text, None
    except ImportError:
        raise
    except Exception as error:  # noqa: BLE001 - one bad structure must not stop the dataset
        reason = str(error).splitlines()[0] if str(error) else ""
        return id_, None, f"{type(error).__name__}: {reason}"[:300]


def describe_rows(rows, describer: str = "template", workers: int = 1,
                  progress: Callable[[int, int | None], None] | None = None):
    """Yield (id, text or None, failure reason or None) for (id, CIF text) rows, in order."""
    tasks = [(str(id_), cif, describer) for id_, cif in rows]
    if workers > 1 and len(tasks) > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for done, result in enumerate(pool.imap(_describe_row, tasks, chunksize=16), 1):
                yield result
                if progress:
                    progress(done, len(tasks))
        return
    for done, task in enumerate(tasks, 1):
        yield _describe_row(task)
        if progress:
            progress(done, len(tasks))


def dataset_descriptions(dataset_dir, describer: str = "template", limit: int | None = None,
                         progress: Callable[[int, int | None], None] | None = None,
                         workers: int | None = None) -> dict:
    """Describe every structure of a built dataset; writes DATASET/texts/descriptions.parquet.

    A structure that cannot be described is left out and reported (first 10 as (id, reason)).
    """
    import pandas as pd

    from ..data.build import PAIRS_FILE
    from ..data.derived import write_texts

    if describer not in DESCRIBERS:
        raise ValueError(f"unknown describer {describer!r}: one of {', '.join(DESCRIBERS)}")
    if describer == "robocrys":
        try:
            import robocrys  # noqa: F401
        except ImportError as error:
            raise ImportError("the robocrys describer needs robocrys: pip install robocrys") from error
    path = Path(dataset_dir) / PAIRS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{dataset_dir} is not a crystalclip dataset (no {PAIRS_FILE})")
    table = pd.read_parquet(path, columns=["id", "cif"])
    if limit is not None:
        table = table.head(limit)
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if len(table) >= 200 else 1
    start = time.perf_counter()
    texts, failed = {}, []
    for id_, text, reason in describe_rows(zip(table["id"], table["cif"]), describer, workers, progress):
        if text:
            texts[id_] = [text]
        else:
            failed.append((id_, reason or "empty description"))
    out = write_texts(dataset_dir, "descriptions", texts)
    return {
        "structures": len(table),
        "described": len(texts),
        "failed": failed[:10],
        "failed_count": len(failed),
        "path": str(out),
        "describer": describer,
        "seconds": round(time.perf_counter() - start, 2),
    }

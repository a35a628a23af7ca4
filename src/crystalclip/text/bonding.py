"""Bonds, coordination geometry and the dimensionality of the bonded network.

Bonds come from the CIF's ``_geom_bond`` loop when the caller passes them
(``structures.bonds.read_cif_bonds``: the MP CIFs carry CrystalNN's; a site the loop leaves without
any bond, as it does for some A-site cations, gets the neighbour rule's), else from a neighbour
rule: two sites are bonded when either lies within (1 + TOLERANCE) x the shortest distance from the
other (pymatgen's MinimumDistanceNN, made mutual as in its bonded StructureGraph), with two
exceptions that keep molecules and frameworks whole: X-H bonds are much shorter than an atom's other
bonds, so H does not set the scale of a non-H atom unless no non-H atom is within covalent reach (C
in methane, O in ice); and two non-metals within their covalent radii + COVALENT_SLACK are bonded
(the CSD's rule), as is H to anything.

A geometry name (octahedral, tetrahedral, ...) comes from trans pairs and a few angle checks. The
dimensionality of each connected component is the rank of the lattice translations that close its
cycles (Larsen et al. 2019; ~0.2 ms), with the Miller plane of layers and the direction of chains.
"""
from __future__ import annotations

import math

import numpy as np

from ..graphs import MIN_DISTANCE
from ..structures.crystal import Crystal
from .chemistry import element_table

__all__ = ["bond_arrays", "components", "dimensionalities", "geometry", "neighbour_bonds", "orientation"]

TOLERANCE = 0.1  # neighbours within (1 + TOLERANCE) x the shortest distance (MinimumDistanceNN's default)
COVALENT_SLACK = 0.4  # Å over the covalent radii sum for a covalent bond (the CSD's rule)
NONMETALS = (1, 5, 6, 7, 8, 9, 14, 15, 16, 17, 33, 34, 35, 52, 53)  # H B C N O F Si P S Cl As Se Br Te I
REACH_SLACK = 0.5  # Å over the covalent radii sum: a non-H atom further away cannot set the scale
SEARCH_RADIUS, MAX_RADIUS = 4.0, 8.0  # Å; the neighbour search widens up to MAX_RADIUS when needed
TRANS_COS = math.cos(math.radians(155.0))  # two neighbours at > 155 degrees are trans


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


def neighbour_bonds(crystal: Crystal, main_z: np.ndarray, occupancy: np.ndarray):
    """Directed bonds (i, j, shift, d, vector from i to j), sorted by centre i, by the rule in the
    module docstring."""
    _, _, _, radii = element_table()
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


def components(n: int, i: np.ndarray, j: np.ndarray, shift: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(dimensionality 0-3, lattice translations that close its cycles) of each connected component
    of the bonded network (Larsen et al. 2019): place every site of a component by walking the bonds
    breadth-first; a bond that then lands in another cell closes a cycle through the lattice, and
    the rank of those translations is the dimension. Bonds must be mutual and sorted by i."""
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
    out = [(0, np.zeros((0, 3), np.int64)) for _ in range(count)]
    for c in np.unique(label[i[closing]]).tolist():
        translations = np.unique(cycles[closing & (label[i] == c)], axis=0)
        out[c] = (int(np.linalg.matrix_rank(translations)), translations)
    return out


def dimensionalities(n: int, i: np.ndarray, j: np.ndarray, shift: np.ndarray) -> list[int]:
    """Dimensionality (0-3) of each connected component of the bonded network (see components)."""
    return [dim for dim, _ in components(n, i, j, shift)]


def _integer_direction(v: np.ndarray) -> tuple[int, int, int] | None:
    """Smallest integer multiple of v (up to sign), or None when that is not small (indices > 4)."""
    v = np.asarray(v, np.float64)
    if not np.abs(v).max() > 1e-9:
        return None
    v = v / np.abs(v[np.abs(v) > 1e-9]).min()
    for scale in (1, 2, 3, 4, 6):
        w = v * scale
        if np.allclose(w, np.rint(w), atol=1e-3):
            w = np.rint(w).astype(int)
            g = math.gcd(*[abs(int(x)) for x in w])
            w = w // max(g, 1)
            if w[np.nonzero(w)[0][0]] < 0:
                w = -w
            return tuple(int(x) for x in w) if np.abs(w).max() <= 4 else None
    return None


def orientation(dim: int, translations: np.ndarray, dataset) -> str | None:
    """'(001)' for layers (the plane holding them), '[001]' for chains (their direction), in the
    conventional cell (spglib's transformation) or the cell as given."""
    if dim not in (1, 2) or len(translations) == 0:
        return None
    transform = np.asarray(dataset.transformation_matrix, np.float64) if dataset is not None else np.eye(3)
    vectors = translations.astype(np.float64) @ transform.T  # x_std = P x
    first = vectors[0]
    if dim == 1:
        found = _integer_direction(first)
        return None if found is None else "[" + "".join(_index(x) for x in found) + "]"
    for other in vectors[1:]:
        normal = np.cross(first, other)
        if np.abs(normal).max() > 1e-6:
            found = _integer_direction(normal)
            return None if found is None else "(" + "".join(_index(x) for x in found) + ")"
    return None


def _index(x: int) -> str:
    return str(x) if x >= 0 else f"-{-x}"


def bond_arrays(crystal: Crystal, main_z, occupancy, bonds):
    """(i, j, shift, d, vector, source) from given bonds (``structures.bonds.Bonds`` or an
    (i, j, shift) triple), else from the neighbour rule."""
    if bonds is None:
        return (*neighbour_bonds(crystal, main_z, occupancy), "neighbours")
    from ..structures.bonds import mutual

    if hasattr(bonds, "i"):
        i, j, shift = bonds.i, bonds.j, bonds.shift
        source = getattr(bonds, "source", "cif")
    else:
        i, j, shift = bonds[:3]
        source = "given"
    n = len(crystal)
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    shift = np.asarray(shift, np.int64).reshape(-1, 3)
    lonely = np.bincount(np.concatenate([i, j]), minlength=n) == 0
    if lonely.any():
        # a bond list that leaves sites out (the mp-cifs loops skip some A-site cations): the
        # neighbour rule's bonds for those sites, so no bonded atom is called isolated
        ni, nj, nshift, _, _ = neighbour_bonds(crystal, main_z, occupancy)
        extra = lonely[ni]
        i, j, shift = np.concatenate([i, ni[extra]]), np.concatenate([j, nj[extra]]), np.concatenate([shift, nshift[extra]])
        source += "+neighbours"
    frac = np.asarray(crystal.frac_coords, np.float64)
    lattice = np.asarray(crystal.lattice, np.float64)
    d = np.linalg.norm((frac[j] + shift - frac[i]) @ lattice, axis=1)
    i, j, shift, d = mutual(n, i, j, shift, d)
    vector = (frac[j] + shift - frac[i]) @ lattice
    return i, j, shift, d, vector, source

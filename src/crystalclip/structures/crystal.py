"""A crystal as plain arrays: the fast internal form that graphs are built from.

pymatgen's Structure is what users get back, but building one costs ~1 ms; the data pipeline keeps
the arrays and converts only when asked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..errors import BadInput


class StructureError(BadInput):
    """A structure that cannot be used; the message is a one-line reason."""


OVERLAP_DISTANCE = 0.1  # Å; two sites closer than this are one position (graphs.MIN_DISTANCE)
SITE_TOLERANCE = 1e-4  # fractional; sites this close are at the same position (pymatgen's default)
OCCUPANCY_SLACK = 1e-3  # a position holds at most 1 + this before it counts as over-occupied


@dataclass
class Crystal:
    id: str
    lattice: np.ndarray  # (3, 3) float64, rows are the lattice vectors in Å
    frac_coords: np.ndarray  # (n_sites, 3) float64, P1 sites in the unit cell
    species: list[dict[int, float]]  # per site: atomic number -> occupancy
    metadata: dict = field(default_factory=dict)  # title, journal, year, doi, mineral, formula, ...

    def __len__(self) -> int:
        return len(self.species)

    @property
    def is_ordered(self) -> bool:
        return all(len(s) == 1 and abs(next(iter(s.values())) - 1.0) < 1e-6 for s in self.species)

    def species_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(site index, atomic number, occupancy) for every (site, element) pair, flattened."""
        site = [i for i, s in enumerate(self.species) for _ in s]
        z = [k for s in self.species for k in s]
        occ = [v for s in self.species for v in s.values()]
        return np.array(site, np.int64), np.array(z, np.int64), np.array(occ, np.float32)

    def composition(self) -> dict[str, float]:
        from pymatgen.core.periodic_table import Element

        amounts: dict[str, float] = {}
        for s in self.species:
            for z, occ in s.items():
                sym = Element.from_Z(z).symbol
                amounts[sym] = amounts.get(sym, 0.0) + occ
        return amounts

    def reduced_formula(self) -> str:
        """"SrTiO3"-style reduced formula (pymatgen's, occupancies counted)."""
        import warnings

        from pymatgen.core import Composition

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about noble gases' missing electronegativity
            return Composition(self.composition()).reduced_formula

    def to_pymatgen(self):
        from pymatgen.core import Lattice, Structure
        from pymatgen.core.periodic_table import Element

        species = [{Element.from_Z(z): occ for z, occ in s.items()} for s in self.species]
        structure = Structure(Lattice(self.lattice), species, self.frac_coords)
        structure.properties = {"id": self.id, **self.metadata}
        return structure

    @classmethod
    def from_pymatgen(cls, structure, id: str | None = None, metadata: dict | None = None) -> "Crystal":
        species = [{el.Z: float(occ) for el, occ in site.species.items()} for site in structure]
        props = dict(getattr(structure, "properties", {}) or {})
        return cls(
            id=id or str(props.pop("id", "structure")),
            lattice=np.array(structure.lattice.matrix, dtype=np.float64),
            frac_coords=np.array(structure.frac_coords, dtype=np.float64),
            species=species,
            metadata={**props, **(metadata or {})},
        )


# --------------------------------------------------------------------------------------------------
# overlapping sites: one rule for the CIF reader and the graph builder


def element_symbol(z: int) -> str:
    import gemmi

    name = gemmi.Element(int(z)).name if 0 < int(z) < 119 else "X"
    return name if name != "X" else f"Z={z}"


def site_label(species: list[dict[int, float]], site: int) -> str:
    names = "/".join(element_symbol(z) for z in species[site]) or "?"
    return f"site {site} ({names})"


def close_pairs(lattice: np.ndarray, frac: np.ndarray, tol: float = OVERLAP_DISTANCE):
    """(i, j, d): every pair of sites i < j closer than ``tol`` Å (nearest periodic image).

    Small cells (up to 64 sites) compare all pairs at their minimum image (exact while tol is below
    half the smallest interplanar spacing); larger ones use scipy's KD-tree with the sites near a face
    copied across.
    """
    n = len(frac)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    lattice = np.asarray(lattice, dtype=np.float64)
    frac = np.asarray(frac, dtype=np.float64)
    spacing = interplanar_spacings(lattice)
    if n > 64 or min(spacing) < 2 * tol:
        return _close_pairs_tree(lattice, frac - np.floor(frac), tol, np.array(spacing))
    # all pairs at once, a handful of numpy calls: ~8 µs for a small cell
    columns = frac.T.copy()
    delta = columns[:, None, :] - columns[:, :, None]  # (3, n, n): site j seen from site i
    delta -= np.rint(delta)
    cart = lattice.T @ delta.reshape(3, -1)
    d2 = np.einsum("ij,ij->j", cart, cart)
    hits = np.flatnonzero(d2 < tol * tol)
    if len(hits) == n:  # only each site with itself
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    rows, cols = np.divmod(hits, n)
    keep = cols > rows
    return rows[keep], cols[keep], np.sqrt(d2[hits[keep]])


_NEIGHBOUR_SHIFTS = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)
                              if (a, b, c) != (0, 0, 0)], np.float64)


def interplanar_spacings(lattice) -> tuple[float, float, float]:
    """d_100, d_010, d_001 in Å (cell volume over the area of each face), in scalar maths."""
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = np.asarray(lattice, dtype=np.float64).tolist()
    bc = (by * cz - bz * cy, bz * cx - bx * cz, bx * cy - by * cx)
    ca = (cy * az - cz * ay, cz * ax - cx * az, cx * ay - cy * ax)
    ab = (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx)
    volume = abs(ax * bc[0] + ay * bc[1] + az * bc[2])
    return tuple(volume / max(math.sqrt(x * x + y * y + z * z), 1e-300) for x, y, z in (bc, ca, ab))


def _close_pairs_tree(lattice, frac, tol, spacing):
    from scipy.spatial import cKDTree  # scipy comes with scikit-learn

    width = np.minimum(tol / spacing, 1.0)  # fractional distance from a face that an image can reach
    low, high = frac < width, frac >= 1.0 - width
    edge = np.flatnonzero((low | high).any(axis=1))  # sites near a face get copies across it
    shifts = _NEIGHBOUR_SHIFTS
    reach = (shifts == 0) | ((shifts == 1) & low[edge, None, :]) | ((shifts == -1) & high[edge, None, :])
    copy_site, copy_shift = np.nonzero(reach.all(axis=2))
    points = [frac, frac[edge[copy_site]] + shifts[copy_shift]]
    owners = [np.arange(len(frac)), edge[copy_site]]
    cart = np.concatenate(points) @ lattice
    owner = np.concatenate(owners)
    pairs = cKDTree(cart).query_pairs(tol, output_type="ndarray")
    a, b = owner[pairs[:, 0]], owner[pairs[:, 1]]
    d = np.linalg.norm(cart[pairs[:, 0]] - cart[pairs[:, 1]], axis=1)
    keep = a != b  # a site near its own image: the graph builder reports a cell that small
    i, j, d = np.minimum(a, b)[keep], np.maximum(a, b)[keep], d[keep]
    order = np.lexsort((d, j, i))
    i, j, d = i[order], j[order], d[order]
    first = np.ones(len(i), bool)
    first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
    return i[first], j[first], d[first]


# --------------------------------------------------------------------------------------------------
# every pair within a radius: the dense neighbour search of small cells (graphs.build_graph)


@lru_cache(maxsize=512)
def _image_shifts(ma: int, mb: int, mc: int) -> np.ndarray:
    """(K, 3) integer lattice translations with |s_a| <= m_a, the zero shift first."""
    grid = np.stack(np.meshgrid(np.arange(-ma, ma + 1), np.arange(-mb, mb + 1), np.arange(-mc, mc + 1),
                                indexing="ij"), axis=-1).reshape(-1, 3)
    grid = grid[np.argsort(np.abs(grid).sum(axis=1), kind="stable")]
    grid = grid.astype(np.float64)
    grid.setflags(write=False)
    return grid


def image_counts(spacing, radius: float) -> tuple[int, int, int]:
    """Images per axis that hold every pair within ``radius`` once pair offsets are wrapped to ±1/2."""
    return tuple(math.floor(radius / d + 0.5) for d in spacing)


def periodic_pairs(frac: np.ndarray, lattice: np.ndarray, spacing, radius: float, centres=None, images=None):
    """(i, j, d) of every pair within ``radius``, from all (centre, site, image) distances in numpy.

    Pair offsets are wrapped to [-1/2, 1/2] and then shifted by every lattice translation that can
    bring them within the radius; d^2 = |c|^2 + 2 c.t + |t|^2 is one small matrix product. Pairs come
    out grouped by centre (ascending); ``centres`` limits them to some centres. ``spacing`` is
    ``interplanar_spacings(lattice)``. For a small cell this costs a third of a vesin call.
    """
    shifts = _image_shifts(*(images or image_counts(spacing, radius)))
    n, k = len(frac), len(shifts)
    rows = frac if centres is None else frac[centres]
    m = len(rows)
    columns = frac.T.copy()  # (3, n): axis-major keeps numpy's inner loops long
    delta = columns[:, None, :] - rows.T[:, :, None]  # (3, m, n): site j seen from centre i
    delta -= np.rint(delta)
    offsets = np.empty((5, m * n))
    np.matmul(lattice.T, delta.reshape(3, -1), out=offsets[:3])  # nearest-image offsets, Å
    np.einsum("ij,ij->j", offsets[:3], offsets[:3], out=offsets[3])
    offsets[4] = 1.0
    translations = shifts @ lattice
    shifted = np.empty((5, k))
    shifted[:3] = 2.0 * translations.T
    shifted[3] = 1.0
    np.einsum("ij,ij->i", translations, translations, out=shifted[4])
    d2 = offsets.T @ shifted  # (m * n, k)
    if centres is None:
        d2[:: n + 1, 0] = np.inf  # a site with itself (shifts[0] is the zero shift)
    else:
        d2[np.arange(m) * n + np.asarray(centres), 0] = np.inf
    flat = d2.ravel()
    hits = np.flatnonzero(flat <= radius * radius)
    pair = hits // k
    i = pair // n
    j = pair - i * n
    d = np.sqrt(np.maximum(flat[hits], 0.0))
    if centres is not None:
        i = np.asarray(centres)[i]
    return i, j, d


def merge_overlapping_sites(lattice, frac, species, origin=None, tol: float = OVERLAP_DISTANCE):
    """Sites closer than ``tol`` Å made physical; returns (frac, species), the inputs when nothing overlaps.

    - Sites at one position (within SITE_TOLERANCE, fractional) whose occupancies sum to at most 1 are
      one disordered site and become one site with all their species (as pymatgen reads them);
      nearby (not coinciding) alternatives summing to at most 1 are split sites and stay apart.
    - Overlapping sites holding more than a full atom are one atom written several times (symmetry
      images of an atom near a special position, atoms generated by symmetry and listed again, riding
      or disordered H positions written as full sites). H/D on top of a heavier atom is dropped, exact
      duplicates count once, and what is left becomes one site at the first one's position, its
      occupancies summed and scaled down to a total of 1, when it is one element (set), or when the
      CIF wrote the sites with the same coordinates (``origin``: per site, the asymmetric-unit
      coordinates it was generated from; a mixed site written without occupancies, Na + Ca at one point).
    - Different elements that only symmetry puts on top of each other with more than a full atom
      between them are impossible: StructureError naming two of them.
    """
    n = len(species)
    i, j, d = close_pairs(lattice, frac, tol)
    if not len(i):
        return frac, species
    occupancy = np.array([sum(s.values()) for s in species])
    delta = frac[j] - frac[i]
    delta -= np.rint(delta)
    coincide = (np.abs(delta) < SITE_TOLERANCE).all(axis=1)
    over = occupancy[i] + occupancy[j] > 1.0 + OCCUPANCY_SLACK
    join = coincide | over
    if not join.any():
        return frac, species

    parent = list(range(n))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(i[join].tolist(), j[join].tolist()):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for a in sorted(set(i[join].tolist()) | set(j[join].tolist())):
        groups.setdefault(root(a), []).append(a)

    new_species: dict[int, dict[int, float]] = {}
    removed: set[int] = set()
    for members in groups.values():
        at, merged = _merge_group(species, members, occupancy, origin, (i, j, d))
        removed.update(members)
        if merged:
            new_species[at] = merged
            removed.discard(at)
    keep = [k for k in range(n) if k not in removed]
    out_species = [new_species.get(k, species[k]) for k in keep]
    return np.asarray(frac)[keep], out_species


def _merge_group(species, members, occupancy, origin, pairs) -> tuple[int, dict[int, float]]:
    """The one site that a group of overlapping sites becomes: (the site whose position it takes,
    its species; {} when nothing is left)."""
    total = float(occupancy[members].sum())
    if total <= 1.0 + OCCUPANCY_SLACK:  # one disordered site (coinciding alternatives)
        return members[0], _sum_species(species[k] for k in members)
    sites = [dict(species[k]) for k in members]
    if any(z != 1 for s in sites for z in s):  # H / D riding on a heavier atom: the H goes
        sites = [{z: v for z, v in s.items() if z != 1} for s in sites]
    kept, seen = [], []
    for k, s in zip(members, sites):
        key = sorted((z, round(v, 6)) for z, v in s.items())
        if s and key not in seen:  # the same atom written twice counts once
            seen.append(key)
            kept.append((k, s))
    if not kept:
        return members[0], {}
    elements = {frozenset(s) for _, s in kept}
    if len(elements) > 1 and not _listed_together(origin, [k for k, _ in kept]):
        i, j, d = pairs
        inside = [(occupancy[a] + occupancy[b], -dist, a, b) for a, b, dist in zip(i.tolist(), j.tolist(), d.tolist())
                  if a in members and b in members and set(species[a]) != set(species[b])]
        _, dist, a, b = max(inside) if inside else (0.0, -0.0, members[0], members[1])
        dist = -dist
        raise StructureError(
            f"{site_label(species, a)} and {site_label(species, b)} overlap ({dist:.3g} Å apart): "
            "different elements on one position"
        )
    return kept[0][0], scale_to_full(_sum_species(s for _, s in kept))


def _sum_species(sites) -> dict[int, float]:
    out: dict[int, float] = {}
    for s in sites:
        for z, v in s.items():
            out[z] = out.get(z, 0.0) + v
    return out


def scale_to_full(site: dict[int, float]) -> dict[int, float]:
    """A site holding more than one atom (occupancies summing above 1, refined or written so)
    scaled to exactly one atom."""
    total = math.fsum(site.values())
    if total <= 1.0 + 1e-9:
        return site
    return {z: v / total for z, v in site.items()}


def _listed_together(origin, members) -> bool:
    """The CIF wrote these sites with the same coordinates itself (not only symmetry put them there)."""
    if origin is None:
        return False
    first = np.asarray(origin[members[0]], dtype=np.float64)
    delta = np.asarray(origin[members[1:]], dtype=np.float64) - first
    delta -= np.rint(delta)
    return bool((np.abs(delta) < SITE_TOLERANCE).all())

"""Crystal -> CGCNN crystal graph: neighbour list, Gaussian distance expansion, atom features.

The graph of CGCNN (Xie & Grossman 2018), as CLAMP and CLaSP use it: every site is a node, and each
node gets directed edges to its ``max_neighbors`` nearest neighbours within ``cutoff`` Å (one edge
per periodic image, so a small cell has several edges to the same site). Edge features are the
distances expanded on Gaussians; node features are CGCNN's 92-d one-hot element rows, weighted by
occupancy so a partially occupied site is the mix of its elements.

Everything is vectorised: the neighbour list of a small cell is one numpy pass over every
(centre, site, periodic image) triple, a large cell's comes from vesin's cell list; numpy sorts and
ranks it, and ``save_graphs`` / ``GraphStore`` cache a whole dataset as a few memory-mapped arrays.
A site with no neighbour within the cutoff keeps its nearest ones beyond it, and overlapping sites
follow the CIF reader's rule (``structures.crystal.merge_overlapping_sites``).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .element_features import NUM_FEATURES, cgcnn_element_table
from .fileio import atomic_dir
from .structures.crystal import (
    OCCUPANCY_SLACK,
    OVERLAP_DISTANCE,
    Crystal,
    StructureError,
    image_counts,
    merge_overlapping_sites,
    periodic_pairs,
    site_label,
)

__all__ = [
    "GraphConfig",
    "CrystalGraph",
    "build_graph",
    "gaussian_expand",
    "gaussian_centers",
    "cgcnn_element_table",
    "site_features",
    "save_graphs",
    "GraphStore",
    "MIN_DISTANCE",
]

MIN_DISTANCE = OVERLAP_DISTANCE  # Å; two sites (or a site and its image) closer than this overlap
STORE_FORMAT = "crystalclip-graphs"
STORE_VERSION = 1


@dataclass(frozen=True)
class GraphConfig:
    cutoff: float = 8.0  # Å, neighbour search radius
    max_neighbors: int = 12  # nearest neighbours kept per site
    gaussian_step: float = 0.2  # Å, spacing and width of the Gaussian distance basis


@dataclass
class CrystalGraph:
    """A crystal graph as flat arrays (all indices are site indices of this crystal).

    Edges are sorted by centre ``edge_src`` and, within a centre, by distance: edge k says that
    site ``edge_dst[k]`` (one particular periodic image of it) is a neighbour of site ``edge_src[k]``
    at ``edge_dist[k]`` Å. Species are the flattened (site, element, occupancy) triples, so an ordered
    crystal has one per site and a partially occupied site has one per element.
    """

    num_sites: int
    edge_src: np.ndarray  # (E,) int32
    edge_dst: np.ndarray  # (E,) int32
    edge_dist: np.ndarray  # (E,) float32, Å
    species_site: np.ndarray  # (S,) int32
    species_z: np.ndarray  # (S,) int32 atomic numbers
    species_occ: np.ndarray  # (S,) float32 occupancies
    id: str = ""

    @property
    def num_edges(self) -> int:
        return len(self.edge_src)


# --------------------------------------------------------------------------------------------------
# neighbour list

DENSE_LIMIT = 60_000  # (centre, site, image) triples up to which numpy beats vesin's call overhead
LONELY_MAX_RADIUS = 4_096.0  # Å; a site's own periodic image is always nearer (cell edges <= 1,000 Å)


def _pairs(cart: np.ndarray, lattice: np.ndarray, cutoff: float):
    """(i, j, d) of every pair within ``cutoff`` (full list, one entry per periodic image)."""
    import vesin  # imports torch when installed (~1 s, once)

    # a NeighborList costs ~1 µs to create; a fresh one per call keeps this thread-safe
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=True, n_threads=1)
    return nl.compute(cart, lattice, True, "ijd")


def build_graph(crystal: Crystal, config: GraphConfig = GraphConfig()) -> CrystalGraph:
    """The CGCNN graph of one crystal: up to ``max_neighbors`` nearest neighbours within ``cutoff``.

    A site with no neighbour within the cutoff (an isolated atom or molecule in a large cell) keeps
    its ``max_neighbors`` nearest within the smallest radius 2·cutoff, 4·cutoff, ... that holds any.
    Sites closer than MIN_DISTANCE follow the CIF reader's rule (``crystal.merge_overlapping_sites``):
    the graph is then that of the merged crystal (fewer nodes than ``len(crystal)``; a crystal from
    ``parse_cif`` is already merged). Raises StructureError (one-line reason) when the lattice is
    degenerate, a site is that close to its own image, or different elements overlap.

    Ties at the last kept neighbour (several images at the same distance) are broken arbitrarily but
    deterministically; the sorted neighbour distances are unique.
    """
    n = len(crystal.species)
    if n == 0:
        raise StructureError("structure has no sites")
    lattice = np.ascontiguousarray(crystal.lattice, dtype=np.float64).reshape(3, 3)
    frac = np.asarray(crystal.frac_coords, dtype=np.float64).reshape(n, 3)
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = lattice.tolist()  # scalar maths: no numpy overhead
    bc = (by * cz - bz * cy, bz * cx - bx * cz, bx * cy - by * cx)
    ca = (cy * az - cz * ay, cz * ax - cx * az, cx * ay - cy * ax)
    ab = (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx)
    volume = abs(ax * bc[0] + ay * bc[1] + az * bc[2])
    lengths = math.sqrt((ax * ax + ay * ay + az * az) * (bx * bx + by * by + bz * bz)
                        * (cx * cx + cy * cy + cz * cz))
    if not volume >= max(1e-3, 1e-6 * lengths):  # also catches NaN / inf in the lattice
        raise StructureError(f"degenerate lattice (cell volume {volume:.3g} Å^3)")
    if not math.isfinite(float(frac.sum())):
        raise StructureError("coordinates are not finite numbers")
    # interplanar spacings d_100, d_010, d_001: how far apart the periodic images are
    spacing = tuple(volume / math.sqrt(x * x + y * y + z * z) for x, y, z in (bc, ca, ab))

    max_nb = int(config.max_neighbors)
    cutoff = float(config.cutoff)
    # Search first where ~1.5 max_nb neighbours are expected (4/3 pi r^3 n / V = 1.5 max_nb) and
    # widen while some site has fewer than max_nb: once every site has max_nb neighbours inside the
    # radius, its max_nb nearest are exactly those within the full cutoff. ~300 pairs instead of
    # ~4,000 at 8 Å is most of the speed; a site short of max_nb ends the search at the cutoff.
    # Small cells take the dense numpy search, large ones vesin's cell list (vesin wants every point
    # inside the cell; the dense search wraps offsets itself).
    radius = min(max((1.125 * max_nb * volume / (math.pi * n)) ** (1.0 / 3.0), 3.0), cutoff)
    wrapped = None
    while True:
        ma, mb, mc = images = tuple(int(radius / s + 0.5) for s in spacing)  # see image_counts
        if n * n * (2 * ma + 1) * (2 * mb + 1) * (2 * mc + 1) <= DENSE_LIMIT:
            i, j, d = periodic_pairs(frac, lattice, spacing, radius, images=images)
        else:
            if wrapped is None:
                wrapped = frac - np.floor(frac)
                wrapped[wrapped >= 1.0] = 0.0
                cart = wrapped @ lattice
            i, j, d = _pairs(cart, lattice, radius)
        counts = np.bincount(i, minlength=n)
        fewest = int(counts.min())
        if radius >= cutoff or fewest >= max_nb:
            break
        radius = min(1.25 * radius, cutoff)

    if len(d) and d.min() < MIN_DISTANCE:
        merged = _without_overlaps(crystal, lattice, frac, i, j, d)
        if merged is not None:
            return build_graph(merged, config)

    # sort by (centre, distance) with one float key (d <= radius), keep max_nb per centre
    order = np.argsort(i * (2.0 * radius + 1.0) + d)
    starts = np.cumsum(counts) - counts
    if fewest >= max_nb:  # every centre keeps exactly max_nb: a (n, max_nb) block of positions
        order = order[(starts[:, None] + np.arange(max_nb)).ravel()]
    elif counts.max() > max_nb:
        rank = np.arange(len(order)) - np.repeat(starts, counts)
        order = order[rank < max_nb]
    src, dst, dist = i[order], j[order], d[order]
    if fewest == 0:
        src, dst, dist = _with_distant_neighbours(frac, lattice, spacing, src, dst, dist,
                                                  np.flatnonzero(counts == 0), max_nb, cutoff, crystal)

    z = [k for s in crystal.species for k in s]
    if len(z) == n:  # one element per site (ordered, or a vacancy): no site index to build
        site = np.arange(n, dtype=np.int32)
        z = np.array(z, np.int32)
        occ = np.array([v for s in crystal.species for v in s.values()], np.float32)
    else:
        site, z, occ = crystal.species_arrays()
    return CrystalGraph(
        num_sites=n,
        edge_src=src.astype(np.int32),
        edge_dst=dst.astype(np.int32),
        edge_dist=dist.astype(np.float32),
        species_site=site.astype(np.int32, copy=False),
        species_z=z.astype(np.int32, copy=False),
        species_occ=occ.astype(np.float32, copy=False),
        id=str(crystal.id),
    )


def _without_overlaps(crystal: Crystal, lattice, frac, i, j, d) -> Crystal | None:
    """The crystal with overlapping sites merged (the reader's rule), or None when none need it."""
    close = d < MIN_DISTANCE
    for k in np.nonzero(close & (i == j))[0][:1]:
        raise StructureError(
            f"{site_label(crystal.species, int(i[k]))} is {d[k]:.3g} Å from its own periodic image (cell too small)"
        )
    occupancy = np.array([sum(s.values()) for s in crystal.species])
    if not (occupancy[i[close]] + occupancy[j[close]] > 1.0 + OCCUPANCY_SLACK).any():
        return None  # split sites (alternatives summing to at most one atom) may overlap
    merged_frac, species = merge_overlapping_sites(lattice, frac, crystal.species)
    if len(species) == len(crystal.species):
        return None
    return Crystal(crystal.id, crystal.lattice, merged_frac, species, crystal.metadata)


def _with_distant_neighbours(frac, lattice, spacing, src, dst, dist, lonely, max_nb, cutoff, crystal):
    """Edges for the sites with no neighbour within the cutoff: their ``max_nb`` nearest within the
    smallest radius 2^k·cutoff that holds any (their own periodic image bounds the search)."""
    new_src, new_dst, new_dist = [src], [dst], [dist]
    radius = 2.0 * cutoff
    while len(lonely):
        images = image_counts(spacing, radius)
        per_centre = len(frac) * math.prod(2 * m + 1 for m in images)  # distances for one centre
        if per_centre > 20_000_000 or radius > LONELY_MAX_RADIUS:
            site = site_label(crystal.species, int(lonely[0]))
            raise StructureError(f"{site} has no neighbour within {radius / 2:g} Å")
        step = max(1, 2_000_000 // per_centre)  # centres per pass: a few tens of MB at most
        found = [periodic_pairs(frac, lattice, spacing, radius, centres=lonely[s : s + step], images=images)
                 for s in range(0, len(lonely), step)]
        i, j, d = (np.concatenate(parts) for parts in zip(*found))
        counts = np.bincount(i, minlength=len(frac))
        order = np.argsort(i * (2.0 * radius + 1.0) + d, kind="stable")
        starts = np.cumsum(counts) - counts
        rank = np.arange(len(order)) - np.repeat(starts, counts)
        order = order[rank < max_nb]
        new_src.append(i[order])
        new_dst.append(j[order])
        new_dist.append(d[order])
        lonely = lonely[counts[lonely] == 0]
        radius *= 2.0
    src, dst, dist = np.concatenate(new_src), np.concatenate(new_dst), np.concatenate(new_dist)
    order = np.argsort(src, kind="stable")  # centres ascending, each centre's edges stay sorted
    return src[order], dst[order], dist[order]


# --------------------------------------------------------------------------------------------------
# features


def gaussian_centers(dmin: float = 0.0, dmax: float = 8.0, step: float = 0.2) -> np.ndarray:
    """CGCNN's Gaussian centres: dmin, dmin + step, ..., dmax (41 for 0..8 step 0.2), float32."""
    return _centers(float(dmin), float(dmax), float(step)).copy()


@lru_cache(maxsize=16)
def _centers(dmin: float, dmax: float, step: float) -> np.ndarray:
    count = int(round((dmax - dmin) / step)) + 1
    centers = (dmin + step * np.arange(count)).astype(np.float32)
    centers.setflags(write=False)
    return centers


def gaussian_expand(dist, dmin: float = 0.0, dmax: float = 8.0, step: float = 0.2):
    """exp(-(d - mu_k)^2 / step^2) for CGCNN's centres mu_k; shape dist.shape + (K,).

    ``dist`` may be a numpy array (-> float32 numpy) or a torch tensor (-> tensor of its dtype and
    device, differentiable).
    """
    mu = _centers(float(dmin), float(dmax), float(step))
    if type(dist).__module__.startswith("torch"):
        import torch

        mu_t = torch.tensor(mu.tolist(), device=dist.device)
        dtype = dist.dtype if dist.is_floating_point() else torch.float32
        diff = dist.to(dtype)[..., None] - mu_t.to(dtype)
        return torch.exp(-(diff * diff) / (step * step))
    diff = np.asarray(dist, dtype=np.float32)[..., None] - mu
    diff *= diff
    # exp below -87 underflows float32 into subnormals, which run ~6x slower; e^-87 ~ 1.6e-38
    np.minimum(diff, np.float32(87.0 * step * step), out=diff)
    diff *= np.float32(-1.0 / (step * step))
    return np.exp(diff, out=diff)


def site_features(graph: CrystalGraph, table: np.ndarray | None = None) -> np.ndarray:
    """(num_sites, F) float32: per site, the occupancy-weighted sum of its elements' table rows.

    ``table`` defaults to ``cgcnn_element_table()`` (F = 92).
    """
    if table is None:
        table = cgcnn_element_table()
    z = np.asarray(graph.species_z)
    if len(z) and (z.min() < 0 or z.max() >= len(table)):
        raise StructureError(f"atomic number {int(z.max())} is outside the element table")
    rows = table[z] * np.asarray(graph.species_occ, dtype=np.float32)[:, None]
    site = np.asarray(graph.species_site)
    if len(site) == graph.num_sites and (site == np.arange(graph.num_sites)).all():
        return rows.astype(np.float32, copy=False)  # one element per site: nothing to sum
    out = np.zeros((graph.num_sites, table.shape[1]), dtype=np.float32)
    np.add.at(out, site, rows)
    return out


# --------------------------------------------------------------------------------------------------
# dataset cache

_ARRAYS = ("edge_src", "edge_dst", "edge_dist", "species_site", "species_z", "species_occ")
_DTYPES = {
    "edge_src": np.int32,
    "edge_dst": np.int32,
    "edge_dist": np.float32,
    "species_site": np.int32,
    "species_z": np.int32,
    "species_occ": np.float32,
}


def save_graphs(graphs: list[CrystalGraph], directory, config: GraphConfig = GraphConfig()) -> Path:
    """Write ``graphs`` as concatenated .npy arrays + offsets + meta.json into ``directory``.

    The directory is swapped in whole (fileio.atomic_dir): a reader never sees a half-written store.
    """
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        num_sites = np.array([g.num_sites for g in graphs], dtype=np.int64)
        num_edges = np.array([len(g.edge_src) for g in graphs], dtype=np.int64)
        num_species = np.array([len(g.species_z) for g in graphs], dtype=np.int64)
        np.save(tmp / "num_sites.npy", num_sites)
        np.save(tmp / "edge_offsets.npy", np.concatenate([[0], np.cumsum(num_edges)]))
        np.save(tmp / "species_offsets.npy", np.concatenate([[0], np.cumsum(num_species)]))
        for name in _ARRAYS:
            parts = [np.asarray(getattr(g, name), dtype=_DTYPES[name]) for g in graphs]
            data = np.concatenate(parts) if parts else np.zeros(0, _DTYPES[name])
            np.save(tmp / f"{name}.npy", data)
        (tmp / "ids.json").write_text(json.dumps([g.id for g in graphs]))
        meta = {
            "format": STORE_FORMAT,
            "version": STORE_VERSION,
            "num_graphs": len(graphs),
            "num_features": NUM_FEATURES,
            "config": asdict(config),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return directory


class GraphStore:
    """A saved set of graphs, memory-mapped: ``len(store)``, ``store[i]``, ``store.config``."""

    def __init__(self, directory, meta: dict, arrays: dict[str, np.ndarray], ids: list[str]):
        self.directory = Path(directory)
        self.meta = meta
        self.config = GraphConfig(**meta["config"])
        self.ids = ids
        self._a = arrays
        # plain Python ints make __getitem__ a few slices and nothing else
        self._sites = arrays["num_sites"].tolist()
        self._eoff = arrays["edge_offsets"].tolist()
        self._soff = arrays["species_offsets"].tolist()

    @classmethod
    def open(cls, directory) -> "GraphStore":
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no graph store at {directory} (meta.json missing)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != STORE_FORMAT or meta.get("version") != STORE_VERSION:
            raise ValueError(f"{directory}: not a {STORE_FORMAT} v{STORE_VERSION} store")
        arrays = {}
        for name in ("num_sites", "edge_offsets", "species_offsets", *_ARRAYS):
            # np.asarray drops the np.memmap subclass (slow slicing) but keeps the mapping
            arrays[name] = np.asarray(np.load(directory / f"{name}.npy", mmap_mode="r"))
        ids_path = directory / "ids.json"
        ids = json.loads(ids_path.read_text()) if ids_path.is_file() else [""] * meta["num_graphs"]
        return cls(directory, meta, arrays, ids)

    def __len__(self) -> int:
        return len(self._sites)

    def __getitem__(self, index: int) -> CrystalGraph:
        n = len(self._sites)
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"graph index {index} out of range for a store of {n}")
        e0, e1 = self._eoff[index], self._eoff[index + 1]
        s0, s1 = self._soff[index], self._soff[index + 1]
        a = self._a
        return CrystalGraph(
            num_sites=self._sites[index],
            edge_src=a["edge_src"][e0:e1],
            edge_dst=a["edge_dst"][e0:e1],
            edge_dist=a["edge_dist"][e0:e1],
            species_site=a["species_site"][s0:s1],
            species_z=a["species_z"][s0:s1],
            species_occ=a["species_occ"][s0:s1],
            id=self.ids[index],
        )

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]

    def __repr__(self) -> str:
        return f"GraphStore({str(self.directory)!r}, {len(self)} graphs, {self.config})"

"""Crystal -> CGCNN crystal graph: neighbour list, Gaussian distance expansion, atom features.

The graph of CGCNN (Xie & Grossman 2018), as CLAMP and CLaSP use it: every site is a node, and each
node gets directed edges to its ``max_neighbors`` nearest neighbours within ``cutoff`` Å (one edge
per periodic image, so a small cell has several edges to the same site). Edge features are the
distances expanded on Gaussians; node features are CGCNN's 92-d one-hot element rows, weighted by
occupancy so a partially occupied site is the mix of its elements.

Everything is vectorised: vesin computes the neighbour list, numpy sorts and ranks it, and
``save_graphs`` / ``GraphStore`` cache a whole dataset as a few memory-mapped arrays.
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
from .structures.crystal import Crystal, StructureError

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

MIN_DISTANCE = 0.1  # Å; two sites (or a site and its image) closer than this are overlapping atoms
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


def _symbol(z: int) -> str:
    from pymatgen.core.periodic_table import Element

    try:
        return Element.from_Z(int(z)).symbol
    except Exception:
        return f"Z={z}"


def _site_label(crystal: Crystal, site: int) -> str:
    names = "/".join(_symbol(z) for z in crystal.species[site]) or "?"
    return f"site {site} ({names})"


def _pairs(cart: np.ndarray, lattice: np.ndarray, cutoff: float):
    """(i, j, d) of every pair within ``cutoff`` (full list, one entry per periodic image)."""
    import vesin  # imports torch when installed (~1 s, once)

    # a NeighborList costs ~1 µs to create; a fresh one per call keeps this thread-safe
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=True, n_threads=1)
    return nl.compute(cart, lattice, True, "ijd")


def build_graph(crystal: Crystal, config: GraphConfig = GraphConfig()) -> CrystalGraph:
    """The CGCNN graph of one crystal: up to ``max_neighbors`` nearest neighbours within ``cutoff``.

    Raises StructureError (one-line reason) when the lattice is degenerate, two sites overlap
    (closer than MIN_DISTANCE), or a site has no neighbour within the cutoff.

    Ties at the last kept neighbour (several images at the same distance) are broken arbitrarily but
    deterministically; the sorted neighbour distances are unique.
    """
    n = len(crystal.species)
    if n == 0:
        raise StructureError("structure has no sites")
    lattice = np.ascontiguousarray(crystal.lattice, dtype=np.float64).reshape(3, 3)
    frac = np.asarray(crystal.frac_coords, dtype=np.float64).reshape(n, 3)
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = lattice.tolist()  # scalar maths: no numpy overhead
    volume = abs(ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx))
    lengths = math.sqrt((ax * ax + ay * ay + az * az) * (bx * bx + by * by + bz * bz)
                        * (cx * cx + cy * cy + cz * cz))
    if not volume >= max(1e-3, 1e-6 * lengths):  # also catches NaN / inf in the lattice
        raise StructureError(f"degenerate lattice (cell volume {volume:.3g} Å^3)")

    # vesin wants every point inside the cell
    frac = frac - np.floor(frac)  # NaN coordinates stay NaN ...
    frac[frac >= 1.0] = 0.0
    cart = frac @ lattice
    if not np.isfinite(cart).all():  # ... and are caught here
        raise StructureError("coordinates are not finite numbers")

    max_nb = int(config.max_neighbors)
    cutoff = float(config.cutoff)
    # Search first where ~1.5 max_nb neighbours are expected (4/3 pi r^3 n / V = 1.5 max_nb) and
    # widen while some site has fewer than max_nb: once every site has max_nb neighbours inside the
    # radius, its max_nb nearest are exactly those within the full cutoff. ~300 pairs instead of
    # ~4,000 at 8 Å is most of the speed; a site short of max_nb ends the search at the cutoff.
    radius = min(max((1.125 * max_nb * volume / (math.pi * n)) ** (1.0 / 3.0), 3.0), cutoff)
    while True:
        i, j, d = _pairs(cart, lattice, radius)
        counts = np.bincount(i, minlength=n)
        if radius >= cutoff or counts.min() >= max_nb:
            break
        radius = min(1.25 * radius, cutoff)

    site, z, occ = crystal.species_arrays()
    if len(d) and d.min() < MIN_DISTANCE:
        _check_overlaps(crystal, i, j, d, np.bincount(site, weights=occ, minlength=n))
    if counts.min() == 0:
        site = int(np.argmin(counts))
        raise StructureError(f"{_site_label(crystal, site)} has no neighbour within {cutoff} Å")

    # sort by (centre, distance) with one float key (d < radius <= cutoff), keep max_nb per centre
    order = np.argsort(i * (2.0 * radius + 1.0) + d, kind="stable")
    if counts.max() > max_nb:
        starts = np.cumsum(counts) - counts
        rank = np.arange(len(order)) - np.repeat(starts, counts)
        order = order[rank < max_nb]

    return CrystalGraph(
        num_sites=n,
        edge_src=i[order].astype(np.int32),
        edge_dst=j[order].astype(np.int32),
        edge_dist=d[order].astype(np.float32),
        species_site=site.astype(np.int32),
        species_z=z.astype(np.int32),
        species_occ=occ.astype(np.float32),
        id=str(crystal.id),
    )


def _check_overlaps(crystal: Crystal, i, j, d, occupancy) -> None:
    """Sites closer than MIN_DISTANCE are an error unless they are partially occupied alternatives
    (a split site: occupancies summing to at most 1), which disordered CIFs are full of."""
    close = np.nonzero(d < MIN_DISTANCE)[0]
    for k in close[np.argsort(d[close])]:
        a, b = sorted((int(i[k]), int(j[k])))
        if a == b:
            raise StructureError(
                f"{_site_label(crystal, a)} is {d[k]:.3g} Å from its own periodic image (cell too small)"
            )
        if occupancy[a] + occupancy[b] > 1.0 + 1e-3:
            raise StructureError(
                f"{_site_label(crystal, a)} and {_site_label(crystal, b)} overlap ({d[k]:.3g} Å apart)"
            )


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

"""Many crystal graphs -> one disjoint graph (a ``GraphBatch`` of torch tensors).

Sites of all crystals are numbered consecutively: crystal b's sites are ``offset[b] ..
offset[b] + num_sites[b] - 1``, so edge and species indices only need that offset added.
``collate_graphs`` does it with a few ``np.concatenate`` / ``np.repeat`` calls and one
``torch.from_numpy`` per array: no Python work per edge or per site. It is a module-level function
and ``GraphBatch`` a plain dataclass, so both pickle (DataLoader workers, ``collate_fn=``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
import torch

from ..graphs import CrystalGraph

__all__ = ["GraphBatch", "collate_graphs"]


@dataclass
class GraphBatch:
    """A batch of crystal graphs as one graph; every index is a global site index.

    Edge k: site ``edge_dst[k]`` is a neighbour (one periodic image) of centre site ``edge_src[k]``
    at ``edge_dist[k]`` Å. Species s: element ``species_z[s]`` with occupancy ``species_occ[s]`` on
    site ``species_site[s]``. Site i belongs to crystal ``site_crystal[i]`` (sites of a crystal are
    contiguous and crystals are in input order).
    """

    species_site: torch.Tensor  # (S,) long
    species_z: torch.Tensor  # (S,) long
    species_occ: torch.Tensor  # (S,) float32
    edge_src: torch.Tensor  # (E,) long
    edge_dst: torch.Tensor  # (E,) long
    edge_dist: torch.Tensor  # (E,) float32, Å
    site_crystal: torch.Tensor  # (N,) long
    num_crystals: int

    @property
    def num_sites(self) -> int:
        return int(self.site_crystal.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edge_src.shape[0])

    @property
    def device(self) -> torch.device:
        return self.site_crystal.device

    def _map(self, fn) -> "GraphBatch":
        values = {}
        for f in fields(self):
            v = getattr(self, f.name)
            values[f.name] = fn(v) if isinstance(v, torch.Tensor) else v
        return GraphBatch(**values)

    def to(self, device, non_blocking: bool = False) -> "GraphBatch":
        """A copy on ``device`` (floats keep float32; use the model's dtype inside forward)."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "GraphBatch":
        """Page-locked copy; DataLoader(pin_memory=True) calls this on custom batch types."""
        return self._map(lambda t: t.pin_memory())

    def __len__(self) -> int:
        return self.num_crystals


def _cat(graphs: Sequence[CrystalGraph], name: str, dtype) -> np.ndarray:
    parts = [np.asarray(getattr(g, name)) for g in graphs]
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def collate_graphs(graphs: Sequence[CrystalGraph]) -> GraphBatch:
    """Concatenate ``graphs`` into one ``GraphBatch`` (crystal b of the batch is ``graphs[b]``).

    Arrays are copied (np.concatenate always allocates, so read-only memory-mapped ``GraphStore``
    slices are fine as input); the tensors own their memory.
    """
    graphs = list(graphs)
    b = len(graphs)
    num_sites = np.fromiter((g.num_sites for g in graphs), dtype=np.int64, count=b)
    num_edges = np.fromiter((len(g.edge_src) for g in graphs), dtype=np.int64, count=b)
    num_species = np.fromiter((len(g.species_z) for g in graphs), dtype=np.int64, count=b)
    offsets = np.cumsum(num_sites) - num_sites  # first global site of each crystal

    edge_shift = np.repeat(offsets, num_edges)
    edge_src = _cat(graphs, "edge_src", np.int64) + edge_shift
    edge_dst = _cat(graphs, "edge_dst", np.int64) + edge_shift
    species_site = _cat(graphs, "species_site", np.int64) + np.repeat(offsets, num_species)

    return GraphBatch(
        species_site=torch.from_numpy(species_site),
        species_z=torch.from_numpy(_cat(graphs, "species_z", np.int64)),
        species_occ=torch.from_numpy(_cat(graphs, "species_occ", np.float32)),
        edge_src=torch.from_numpy(edge_src),
        edge_dst=torch.from_numpy(edge_dst),
        edge_dist=torch.from_numpy(_cat(graphs, "edge_dist", np.float32)),
        site_crystal=torch.from_numpy(np.repeat(np.arange(b, dtype=np.int64), num_sites)),
        num_crystals=b,
    )

"""CGCNN crystal encoder (Xie & Grossman, PRL 120, 145301, 2018) on batched edge lists.

A batch is one disjoint graph (``crystalclip.data.batching.GraphBatch``): sites of all crystals
numbered consecutively, one row per directed edge (centre ``edge_src``, neighbour ``edge_dst``,
distance ``edge_dist``). Everything below is whole-batch tensor algebra; there is no Python loop over
crystals, sites or edges.

1. Site features: the occupancy-weighted sum of the site's element rows, so a site half Si, half Al
   is the mean of the Si and Al rows (CLaSP's treatment of partial occupancy). The rows are CGCNN's
   92-d one-hot table (``atom_features="cgcnn92"``, a fixed buffer) followed by ``Linear(92,
   atom_dim)``, or a learned ``nn.Embedding`` over Z of width ``atom_dim`` (``"embedding"``; the
   mixture is used directly, a Linear after a learned table would add nothing).
2. ``num_layers`` convolutions, each as in the paper / the cgcnn repo's ``ConvLayer``::

       z_ij = cat(v_i, v_j, u_ij) W + b          u_ij = Gaussian expansion of |r_ij|
       f, c = split(BN1(z_ij))
       v_i <- softplus(v_i + BN2(sum_j sigmoid(f) * softplus(c)))

   ``cat(v_i, v_j, u_ij) W`` is computed as ``(v W_i)[i] + (v W_j)[j] + u W_u`` - the same linear
   map with the same ``fc_full`` parameter, but the site terms are multiplied once per site instead
   of once per edge and the distance term once per distinct distance. The neighbour sum is an
   ``index_add`` over edge centres (a reshape and ``sum`` when every site has the same number of
   neighbours, as in almost every 8 Å / 12-neighbour graph).
3. Pooling: the mean (or sum) of the site vectors of each crystal -> (num_crystals, atom_dim).

Parameter names follow the cgcnn repo (``embedding``, ``convs.k.fc_full``, ``.bn1``, ``.bn2``).
In eval mode (BatchNorm running statistics) a crystal's output does not depend on the rest of the
batch; in training mode BatchNorm's batch statistics couple the crystals, as in CGCNN.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batching import GraphBatch
from ..config import from_dict
from ..graphs import GraphConfig, cgcnn_element_table, gaussian_centers

__all__ = ["CGCNNConfig", "CGCNN", "CGCNNConv"]

ATOM_FEATURES = ("cgcnn92", "embedding")
POOLING = ("mean", "sum")
NUM_ELEMENTS = 119  # rows 0..118, row = Z (row 0 unused)
EXP_FLOOR = -87.0  # exp(-87) ~ 1.6e-38, the smallest normal float32 is 1.2e-38


@dataclass
class CGCNNConfig:
    atom_features: str = "cgcnn92"  # "cgcnn92" (fixed 92-d table) | "embedding" (learned over Z)
    atom_dim: int = 64
    num_layers: int = 3
    pooling: str = "mean"  # "mean" | "sum"

    def __post_init__(self):
        if self.atom_features not in ATOM_FEATURES:
            raise ValueError(f"atom_features must be one of {ATOM_FEATURES}, got {self.atom_features!r}")
        if self.pooling not in POOLING:
            raise ValueError(f"pooling must be one of {POOLING}, got {self.pooling!r}")
        if int(self.atom_dim) < 1 or int(self.num_layers) < 0:
            raise ValueError("atom_dim must be >= 1 and num_layers >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CGCNNConfig":
        return from_dict(cls, data, "cgcnn.")


def _regular_degree(edge_src: torch.Tensor, num_sites: int) -> int:
    """M if ``edge_src == arange(num_sites).repeat_interleave(M)`` (M >= 1), else 0."""
    e = edge_src.shape[0]
    if num_sites == 0 or e == 0 or e % num_sites:
        return 0
    m = e // num_sites
    sites = torch.arange(num_sites, device=edge_src.device).unsqueeze(1)
    return m if bool((edge_src.view(num_sites, m) == sites).all()) else 0


class CGCNNConv(nn.Module):
    """One CGCNN convolution on an edge list (the cgcnn repo's ConvLayer without the (N, M) padding)."""

    def __init__(self, atom_dim: int, edge_dim: int):
        super().__init__()
        self.atom_dim = atom_dim
        self.fc_full = nn.Linear(2 * atom_dim + edge_dim, 2 * atom_dim)
        self.bn1 = nn.BatchNorm1d(2 * atom_dim)
        self.bn2 = nn.BatchNorm1d(atom_dim)

    def forward(self, v: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor,
                u: torch.Tensor, u_index: torch.Tensor | None = None, per_site: int = 0) -> torch.Tensor:
        """``v`` (N, a) site vectors -> (N, a).

        ``u`` holds the Gaussian-expanded distances, one row per edge, or one row per distinct
        distance with ``u_index`` (E,) giving each edge its row. ``per_site=M > 0`` promises that
        ``edge_src == arange(N).repeat_interleave(M)`` (edges grouped by centre, M per site, what
        ``collate_graphs`` gives when every site found M neighbours): the centre gather and the
        neighbour sum become a broadcast and a ``sum`` over an (N, M, .) view. Same numbers either way.
        """
        a = self.atom_dim
        w = self.fc_full.weight  # (2a, 2a + G): columns for v_i, v_j, u_ij
        h_centre = F.linear(v, w[:, :a], self.fc_full.bias)  # v_i W_i + b, once per site
        h_nbr = F.linear(v, w[:, a:2 * a])  # v_j W_j, once per site
        h_edge = F.linear(u, w[:, 2 * a:])  # u W_u, once per row of u
        if u_index is not None:
            h_edge = h_edge.index_select(0, u_index)
        z = h_nbr.index_select(0, edge_dst) + h_edge
        if per_site:
            z = (z.view(-1, per_site, 2 * a) + h_centre.unsqueeze(1)).view(-1, 2 * a)
        else:
            z = z + h_centre.index_select(0, edge_src)
        filt, core = self.bn1(z).chunk(2, dim=1)
        msg = torch.sigmoid(filt) * F.softplus(core)
        if per_site:
            summed = msg.view(-1, per_site, a).sum(dim=1)
        else:
            summed = v.new_zeros(v.shape).index_add(0, edge_src, msg)
        return F.softplus(v + self.bn2(summed))


class CGCNN(nn.Module):
    """``CGCNN(config, graph)(batch) -> (batch.num_crystals, config.atom_dim)`` crystal embeddings.

    ``graph`` (the model's graph settings) gives the Gaussian basis: centres 0..cutoff every
    gaussian_step Å."""

    def __init__(self, config: CGCNNConfig | None = None, graph: GraphConfig = GraphConfig(), **overrides):
        super().__init__()
        if config is None:
            config = CGCNNConfig(**overrides)
        elif overrides:
            config = CGCNNConfig.from_dict({**config.to_dict(), **overrides})
        self.config = config
        self.graph = graph
        self.out_dim = config.atom_dim
        if config.atom_features == "cgcnn92":
            table = torch.from_numpy(cgcnn_element_table().copy())
            self.register_buffer("element_table", table)  # saved with the model: self-contained
            self.embedding = nn.Linear(table.shape[1], config.atom_dim)
        else:
            self.element_embedding = nn.Embedding(NUM_ELEMENTS, config.atom_dim)
            self.embedding = nn.Identity()
        centers = torch.from_numpy(gaussian_centers(0.0, graph.cutoff, graph.gaussian_step))
        self.register_buffer("gaussian_centers", centers, persistent=False)
        self.num_gaussians = len(centers)
        self.convs = nn.ModuleList(
            CGCNNConv(config.atom_dim, self.num_gaussians) for _ in range(config.num_layers)
        )

    def site_features(self, batch: GraphBatch) -> torch.Tensor:
        """(num_sites, F): occupancy-weighted sum of each site's element rows (before ``embedding``)."""
        if self.config.atom_features == "cgcnn92":
            rows = self.element_table.index_select(0, batch.species_z)
        else:
            rows = self.element_embedding(batch.species_z)
        rows = rows * batch.species_occ.to(rows.dtype).unsqueeze(1)
        return rows.new_zeros(batch.num_sites, rows.shape[1]).index_add(0, batch.species_site, rows)

    def expand_distances(self, dist: torch.Tensor) -> torch.Tensor:
        """(E, G) Gaussians exp(-(d - mu_k)^2 / step^2), as ``graphs.gaussian_expand``.

        Exponents below EXP_FLOOR give exactly 0 instead of a float32 subnormal: on x86 CPUs exp is
        ~15x slower when its result underflows, which most (edge, centre) pairs do (|d - mu| > 1.9 Å).
        """
        step = self.graph.gaussian_step
        y = (dist.unsqueeze(1) - self.gaussian_centers.to(dist.dtype)).square() * (-1.0 / (step * step))
        return y.clamp(min=EXP_FLOOR).exp().masked_fill(y < EXP_FLOOR, 0.0)

    def site_embeddings(self, batch: GraphBatch) -> torch.Tensor:
        """(num_sites, atom_dim) site vectors after the convolutions (before pooling)."""
        v = self.embedding(self.site_features(batch))
        dist = batch.edge_dist.to(v.dtype)
        if dist.requires_grad:  # torch.unique is not differentiable: one row per edge
            u, u_index = self.expand_distances(dist), None
        else:
            # Every bond appears twice (i->j, j->i) and symmetry repeats distances further: a batch of
            # mp40 crystals has ~5x fewer distinct distances than edges, and u W_u (the largest matmul
            # of a layer, forward and backward) is computed once per distinct distance and gathered.
            distinct, u_index = torch.unique(dist, return_inverse=True)
            u = self.expand_distances(distinct)
        per_site = _regular_degree(batch.edge_src, batch.num_sites)
        for conv in self.convs:
            v = conv(v, batch.edge_src, batch.edge_dst, u, u_index, per_site)
        return v

    def pool(self, v: torch.Tensor, site_crystal: torch.Tensor, num_crystals: int) -> torch.Tensor:
        out = v.new_zeros(num_crystals, v.shape[1]).index_add(0, site_crystal, v)
        if self.config.pooling == "mean":
            counts = torch.bincount(site_crystal, minlength=num_crystals).clamp_(min=1)
            out = out / counts.to(v.dtype).unsqueeze(1)
        return out

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        v = self.site_embeddings(batch)
        return self.pool(v, batch.site_crystal, batch.num_crystals)

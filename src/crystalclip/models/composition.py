"""The composition-only crystal encoder: the bag of elements, no geometry.

It is the baseline that shows what structure adds: trained with the same recipe as the graph
model, it sees only each element's fraction of the formula.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.batching import GraphBatch

NUM_ELEMENTS = 119  # index = atomic number


def element_fractions(batch: GraphBatch) -> torch.Tensor:
    """(num_crystals, 119) occupancy-weighted element fractions, rows summing to 1."""
    crystal = batch.site_crystal[batch.species_site]
    counts = torch.zeros(batch.num_crystals * NUM_ELEMENTS, device=batch.species_occ.device)
    counts.index_add_(0, crystal * NUM_ELEMENTS + batch.species_z, batch.species_occ)
    counts = counts.view(batch.num_crystals, NUM_ELEMENTS)
    return counts / counts.sum(1, keepdim=True).clamp(min=1e-8)


class CompositionEncoder(nn.Module):
    def __init__(self, hidden: int = 256):
        super().__init__()
        self.out_dim = hidden
        self.mlp = nn.Sequential(nn.Linear(NUM_ELEMENTS, hidden), nn.GELU(), nn.Linear(hidden, hidden))

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        return self.mlp(element_fractions(batch))

"""The symmetry and lattice channel: what a mean-pooled CGCNN cannot see.

Text about crystals names global things (crystal system, space group, structure type) that local
environments average away: on 1,000 MP structures a crystal-system probe scores 0.58 on nine cell-shape
numbers but 0.35 on frozen CHGNet embeddings. This channel embeds the space-group number and encodes
`structures.symmetry.symmetry_features` (crystal system, centring, cell shape, Wyckoff statistics),
computed once per structure in the feature stage, never per training step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..structures.symmetry import NUM_SYMMETRY_FEATURES


@dataclass
class SymmetryConfig:
    enabled: bool = False
    symprec: float = 0.1  # spglib's tolerance, Å
    spacegroup_dim: int = 32  # width of the space-group embedding
    hidden: int = 64  # width of the encoded cell-shape and Wyckoff features

    def __post_init__(self):
        if self.symprec <= 0 or self.spacegroup_dim < 1 or self.hidden < 1:
            raise ValueError("symprec, spacegroup_dim and hidden must be positive")


class SymmetryEncoder(nn.Module):
    """(space-group numbers (B,), features (B, F)) -> (B, spacegroup_dim + hidden)."""

    def __init__(self, config: SymmetryConfig):
        super().__init__()
        self.spacegroup = nn.Embedding(231, config.spacegroup_dim)
        self.features = nn.Sequential(nn.Linear(NUM_SYMMETRY_FEATURES, config.hidden), nn.GELU(),
                                      nn.Linear(config.hidden, config.hidden))
        self.out_dim = config.spacegroup_dim + config.hidden

    def forward(self, numbers: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.spacegroup(numbers.long()), self.features(features.float())], dim=1)

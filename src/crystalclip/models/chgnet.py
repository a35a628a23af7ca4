"""A frozen pretrained potential as the crystal encoder (LiT-style): CHGNet 0.3.0's features, computed
once per dataset and cached, under a small trainable head.

CHGNet (Deng et al. 2023, BSD-3; `pip install -e ".[chgnet]"`, weights inside the wheel, no network)
gives per structure `crystal_fea` (64) and per atom `atom_fea` (64): the encoder reads both, the
latter averaged over atoms (128 numbers). For metallic vs not, such features help (CHGNet 0.85 ROC-AUC
vs 0.82 for composition on 1,000 MP structures); for global symmetry they do not (0.35 crystal-system
probe), which is what the symmetry channel is for. Partially occupied sites are given their majority
species; a structure CHGNet cannot take (an atom with no neighbour in its 5 Å graph, ...) gets zeros.
Fine-tuning the potential is not offered: on CPU it is ~11.6 structures/s forward and backward.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

CHGNET_DIM = 128


@lru_cache(maxsize=1)
def _model():
    """CHGNet 0.3.0, loaded once per process (an ImportError is not cached: installing it fixes it)."""
    try:
        from chgnet.model import CHGNet
    except ImportError as error:
        from ..errors import ConfigError

        raise ConfigError('crystal_encoder "chgnet" needs CHGNet: pip install -e ".[chgnet]"') from error
    return CHGNet.load(verbose=False).eval()


def chgnet_identity() -> str:
    """What cached features are keyed by: the package and the model version."""
    import chgnet

    return f"chgnet-{chgnet.__version__}-{_model().version}"


def chgnet_features(crystals, batch_size: int = 16) -> np.ndarray:
    """(N, 128) float32: CHGNet's crystal_fea and mean atom_fea of each Crystal (zeros where it fails)."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.core.periodic_table import Element

    model = _model()
    structures = [Structure(Lattice(c.lattice), [Element.from_Z(max(s, key=s.get)) for s in c.species], c.frac_coords)
                  for c in crystals]
    out = np.zeros((len(structures), CHGNET_DIM), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for start in range(0, len(structures), batch_size):
            chunk = list(range(start, min(start + batch_size, len(structures))))
            try:
                found = model.predict_structure([structures[i] for i in chunk], task="e", return_atom_feas=True,
                                                return_crystal_feas=True, batch_size=batch_size)
            except Exception:  # noqa: BLE001 - one structure CHGNet cannot take: the others one by one
                found = []
                for i in chunk:
                    try:
                        found.append(model.predict_structure(structures[i], task="e", return_atom_feas=True,
                                                             return_crystal_feas=True))
                    except Exception:  # noqa: BLE001
                        found.append(None)
            for i, prediction in zip(chunk, found if isinstance(found, list) else [found]):
                if prediction is not None:
                    out[i, :64] = prediction["crystal_fea"]
                    out[i, 64:] = np.asarray(prediction["atom_fea"]).mean(axis=0)
    return out


@dataclass
class PotentialConfig:
    hidden: int = 128


class PotentialEncoder(nn.Module):
    """Cached frozen potential features (B, 128) -> (B, hidden): the trainable head of a LiT tower."""

    def __init__(self, config: PotentialConfig):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(CHGNET_DIM), nn.Linear(CHGNET_DIM, config.hidden), nn.GELU(),
                                 nn.Linear(config.hidden, config.hidden))
        self.out_dim = config.hidden

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features.float())

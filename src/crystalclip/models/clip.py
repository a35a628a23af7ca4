"""The two-tower model: crystal encoder + text tower, projection heads into one unit-norm space.

A trained model is a directory: `config.json` (this ModelConfig + how it was trained) and
`model.safetensors` (no pickle). A frozen text tower is not saved: config names its package or
path, and it is loaded from there.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import from_dict
from ..data.batching import GraphBatch
from ..errors import BadInput, NotFound
from ..fileio import atomic_path
from ..graphs import GraphConfig
from .cgcnn import CGCNN, CGCNNConfig
from .composition import CompositionEncoder
from .chgnet import PotentialConfig, PotentialEncoder
from .symmetry import SymmetryConfig, SymmetryEncoder
from .text import TextTowerConfig, get_text_tower

CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"


CRYSTAL_ENCODERS = ("cgcnn", "composition", "chgnet")


@dataclass
class ModelConfig:
    """Everything that makes a model, featurization included: training, evaluation, the API and
    indexes all build graphs from `graph`, so a model never sees other inputs than it trained on."""

    crystal_encoder: str = "cgcnn"  # "cgcnn" | "composition" (bag-of-elements baseline) | "chgnet" (frozen, cached)
    graph: GraphConfig = field(default_factory=GraphConfig)  # neighbour cutoff, neighbours, Gaussian basis
    cgcnn: CGCNNConfig = field(default_factory=CGCNNConfig)
    potential: PotentialConfig = field(default_factory=PotentialConfig)  # the head over frozen CHGNet features
    text: TextTowerConfig = field(default_factory=TextTowerConfig)
    embed_dim: int = 256
    head_layers: int = 2  # linear layers per projection head (CLaSP: 3)
    composition_channel: bool = True  # fuse the frozen tower's reading of the reduced formula
    symmetry: SymmetryConfig = field(default_factory=SymmetryConfig)  # the space group and cell-shape channel
    logit_scale_init: float = 1 / 0.07
    logit_scale_max: float = 100.0

    def __post_init__(self):
        if self.crystal_encoder not in CRYSTAL_ENCODERS:
            raise ValueError(f"crystal_encoder must be one of {', '.join(CRYSTAL_ENCODERS)}, not {self.crystal_encoder!r}")
        if self.embed_dim < 1 or self.head_layers < 1:
            raise ValueError("embed_dim and head_layers must be >= 1")

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return from_dict(cls, _upgrade(data), "model.")


def _upgrade(data: dict) -> dict:
    """Configs written before the model owned its graph settings kept them in `cgcnn`."""
    data = dict(data)
    cgcnn = dict(data.get("cgcnn") or {})
    moved = {k: cgcnn.pop(k) for k in ("cutoff", "gaussian_step") if k in cgcnn}
    if moved:
        data["cgcnn"] = cgcnn
        data["graph"] = {**moved, **(data.get("graph") or {})}
    return data


_SHA_CACHE: dict[tuple, str] = {}


def model_sha256(directory: str | os.PathLike) -> str:
    """sha256 over a model directory's config.json + model.safetensors: a model's identity (a moved
    copy still matches); cached per (path, mtime, size)."""
    files = [Path(directory) / CONFIG_FILE, Path(directory) / WEIGHTS_FILE]
    for file in files:
        if not file.is_file():
            raise NotFound(f"{directory} is not a crystalclip model (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    key = tuple((str(f.resolve()), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        for file in files:
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def _head(in_dim: int, out_dim: int, layers: int = 2) -> nn.Sequential:
    if layers < 1:
        raise ValueError(f"head_layers must be >= 1, not {layers}")
    modules = [nn.Linear(in_dim, out_dim)]
    for _ in range(layers - 1):
        modules += [nn.GELU(), nn.Linear(out_dim, out_dim)]
    return nn.Sequential(*modules)


class CrystalClip(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # a frozen tower is shared between models (loaded once); a fine-tuned one is the model's own
        self.text_tower = get_text_tower(config.text)
        if config.crystal_encoder == "cgcnn":
            self.crystal_encoder = CGCNN(config.cgcnn, config.graph)
        elif config.crystal_encoder == "chgnet":
            self.crystal_encoder = PotentialEncoder(config.potential)
        else:
            self.crystal_encoder = CompositionEncoder(hidden=config.embed_dim)
        self.symmetry_encoder = SymmetryEncoder(config.symmetry) if config.symmetry.enabled else None
        crystal_in = (self.crystal_encoder.out_dim + (self.text_tower.dim if config.composition_channel else 0)
                      + (self.symmetry_encoder.out_dim if self.symmetry_encoder is not None else 0))
        self.crystal_head = _head(crystal_in, config.embed_dim, config.head_layers)
        self.text_head = _head(self.text_tower.dim, config.embed_dim, config.head_layers)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(config.logit_scale_init)))

    @property
    def formula_tower(self):
        """The composition channel always reads formulas with the frozen pretrained tower (shared,
        cached per dataset), even when the text tower itself is being fine-tuned."""
        if self.text_tower.frozen:
            return self.text_tower
        return get_text_tower(dataclasses.replace(self.config.text, trainable_layers=0))

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.exp().clamp(max=self.config.logit_scale_max)

    @property
    def reads_potential(self) -> bool:
        return self.config.crystal_encoder == "chgnet"

    def embed_crystals(self, batch: GraphBatch, formula_features: torch.Tensor | None = None,
                       symmetry: tuple[torch.Tensor, torch.Tensor] | None = None,
                       potential: torch.Tensor | None = None) -> torch.Tensor:
        """Unit-norm crystal embeddings; formula_features = the tower's features of each reduced formula,
        symmetry = (space-group numbers, `structures.symmetry.symmetry_features` values) of each crystal,
        potential = the frozen CHGNet features of each crystal (crystal_encoder "chgnet")."""
        if self.reads_potential:
            if potential is None:
                raise ValueError("this model reads frozen CHGNet features: pass potential=")
            parts = [self.crystal_encoder(potential)]
        else:
            parts = [self.crystal_encoder(batch)]
        if self.config.composition_channel:
            if formula_features is None:
                raise ValueError("this model reads the reduced formula: pass formula_features")
            parts.append(formula_features)
        if self.symmetry_encoder is not None:
            if symmetry is None:
                raise ValueError("this model reads the symmetry channel: pass symmetry=(numbers, features)")
            parts.append(self.symmetry_encoder(*symmetry))
        return F.normalize(self.crystal_head(torch.cat(parts, dim=1)), dim=-1)

    def embed_text_features(self, features: torch.Tensor) -> torch.Tensor:
        """Unit-norm text embeddings from the tower's pooled features (cached when the tower is frozen)."""
        return F.normalize(self.text_head(features), dim=-1)

    def text_features(self, texts: list[str], batch_size: int = 128) -> torch.Tensor:
        if self.text_tower.frozen:
            return self.text_tower.encode(texts, batch_size=batch_size)
        return self.text_tower.forward_texts(texts)  # with gradients; long texts in windows if configured

    # ---- saving and loading: safetensors + JSON, never pickle ----

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Everything but a frozen text tower, which is loaded from its own package or path."""
        state = self.state_dict()
        if self.text_tower.frozen:
            state = {k: v for k, v in state.items() if not k.startswith("text_tower.")}
        return {k: v.detach().contiguous().cpu() for k, v in state.items()}

    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"model": asdict(self.config), **(extra or {})}
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            save_file(self.trainable_state(), tmp)
        with atomic_path(directory / CONFIG_FILE) as tmp:
            tmp.write_text(json.dumps(config, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "CrystalClip":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        if not config_path.is_file() or not weights_path.is_file():
            raise NotFound(f"{directory} is not a crystalclip model (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
        model = cls(ModelConfig.from_dict(json.loads(config_path.read_text())["model"]))
        try:
            state = load_file(weights_path)
        except (SafetensorError, OSError) as error:
            raise BadInput(f"{weights_path} is not a safetensors file ({error}); pickles are never loaded") from None
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not (model.text_tower.frozen and k.startswith("text_tower."))]
        if missing or unexpected:
            raise BadInput(f"{weights_path} does not fit its config: missing {missing[:5]}, unexpected {unexpected[:5]}")
        return model.eval()

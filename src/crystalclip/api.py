"""The Python facade: load a model, encode structures and texts, classify zero-shot.

    import crystalclip as cc
    model = cc.load("default")
    z = model.encode_structures(cc.read_structures("folder/"))   # (N, D), unit rows
    t = model.encode_texts(["layered sulfide superconductor"])    # (M, D), unit rows
    p = model.classify(structures, ["superconductor", "insulator"])  # (N, L) probabilities
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .data.batching import collate_graphs
from .graphs import GraphConfig, build_graph
from .models.clip import CrystalClip
from .structures import Crystal, ReadFailure, StructureError, iter_crystals

DEFAULT_MODEL = "default"
FORMULA_CACHE_SIZE = 50_000


def packaged_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Models shipped inside the package: "default" and its composition-only baseline "composition"."""
    return Path(str(resources.files("crystalclip") / "pretrained" / name))


def load(name_or_path: str | os.PathLike = DEFAULT_MODEL) -> "Model":
    """A trained model by packaged name ("default", "composition") or run directory; never downloads."""
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and len(path.parts) == 1 and packaged_model_path(name_or_path).is_dir():
        path = packaged_model_path(name_or_path)
    return Model(CrystalClip.load(path), path)


def to_crystals(structures) -> list[Crystal]:
    """pymatgen Structures, Crystals, CIF texts or paths (files or folders) -> Crystals.

    An unreadable input raises StructureError naming it: encoding must return one row per input.
    """
    if isinstance(structures, (str, os.PathLike)) or not isinstance(structures, Iterable):
        structures = [structures]
    crystals = []
    for item in structures:
        if isinstance(item, Crystal):
            crystals.append(item)
        elif hasattr(item, "lattice") and hasattr(item, "species"):  # a pymatgen Structure
            crystals.append(Crystal.from_pymatgen(item))
        else:
            for found in iter_crystals(item):
                if isinstance(found, ReadFailure):
                    raise StructureError(str(found))
                crystals.append(found)
    return crystals


class Model:
    def __init__(self, clip: CrystalClip, path: Path | None = None):
        self.clip = clip.eval()
        self.path = path
        cgcnn = clip.config.cgcnn
        self.graph_config = GraphConfig(cutoff=cgcnn.get("cutoff", 8.0), gaussian_step=cgcnn.get("gaussian_step", 0.2))
        self._formulas: dict[str, torch.Tensor] = {}  # formula -> tower features: formulas repeat a lot

    def _formula_features(self, formulas: list[str]) -> torch.Tensor:
        missing = [f for f in dict.fromkeys(formulas) if f not in self._formulas]
        if missing:
            if len(self._formulas) + len(missing) > FORMULA_CACHE_SIZE:
                self._formulas.clear()
            self._formulas.update(zip(missing, self.clip.formula_tower.encode(missing)))
        return torch.stack([self._formulas[f] for f in formulas])

    @property
    def dim(self) -> int:
        return self.clip.config.embed_dim

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        features = self.clip.text_tower.encode(texts, batch_size=batch_size)
        return self.clip.embed_text_features(features).numpy()

    @torch.no_grad()
    def encode_crystals(self, crystals: Sequence[Crystal], batch_size: int = 128, progress=None) -> np.ndarray:
        out = []
        for start in range(0, len(crystals), batch_size):
            chunk = crystals[start:start + batch_size]
            graphs = collate_graphs([build_graph(c, self.graph_config) for c in chunk])
            formulas = None
            if self.clip.config.composition_channel:
                formulas = self._formula_features([c.reduced_formula() for c in chunk])
            out.append(self.clip.embed_crystals(graphs, formulas).numpy())
            if progress:
                progress(start + len(chunk), len(crystals))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def encode_structures(self, structures, batch_size: int = 128) -> np.ndarray:
        """(N, D) unit rows, one per structure (pymatgen Structures, paths, CIF text or Crystals)."""
        return self.encode_crystals(to_crystals(structures), batch_size=batch_size)

    def classify(self, structures, labels: Sequence[str], template: str = "{}") -> np.ndarray:
        """(N, L) zero-shot probabilities: softmax over the labels of the scaled cosine similarities."""
        if not labels:
            raise ValueError("give at least one label")
        z = self.encode_structures(structures)
        t = self.encode_texts([template.format(label) for label in labels])
        logits = float(self.clip.logit_scale.detach()) * z @ t.T
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

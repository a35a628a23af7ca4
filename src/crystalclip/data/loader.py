"""Dataset rows -> training batches: one of each structure's texts sampled per step, optional
CLaC augmentations of both sides."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..graphs import GraphStore
from .batching import GraphBatch, collate_graphs
from .dataset import Dataset, TextPool


@dataclass
class PairBatch:
    graphs: GraphBatch
    rows: torch.Tensor  # (B,) dataset row of each structure
    text_ids: torch.Tensor  # (B,) index into the pool's texts of the text paired in this step
    text_features: torch.Tensor | None  # (B, tower dim) when the tower is frozen and texts are not augmented
    formula_features: torch.Tensor | None  # (B, tower dim)
    symmetry: tuple[torch.Tensor, torch.Tensor] | None  # (B,) space groups, (B, F) symmetry features
    potential: torch.Tensor | None  # (B, 128) frozen CHGNet features
    texts: list[str]
    second_view: "PairBatch | None" = None  # another augmentation of the same rows (intramodal terms)


@dataclass
class Augmentation:
    """CLaC's views: atoms displaced (fraction of the minimum distance), cell strained, sentences
    dropped and shuffled, words masked; and, with probability `formula_free`, a text swapped for its
    formula-free twin (CLaC's replace_formula_prob), so that the formula cannot carry all the signal.
    Zero turns a part off."""

    max_displacement: float = 0.0
    max_strain: float = 0.0
    sentence_drop: float = 0.0
    mask_fraction: float = 0.0
    mask_token: str = "[MASK]"
    formula_free: float = 0.0
    # "step": each step swaps a text with that probability (both forms go through the tower);
    # "text": each distinct text is swapped or not once for the run (one form of each is read)
    formula_free_by: str = "step"

    def __post_init__(self):
        if not 0.0 <= self.formula_free <= 1.0:
            raise ValueError(f"formula_free is a probability, not {self.formula_free}")
        if self.formula_free_by not in ("step", "text"):
            raise ValueError(f"formula_free_by is 'step' or 'text', not {self.formula_free_by!r}")

    @property
    def crystals(self) -> bool:
        return self.max_displacement > 0 or self.max_strain > 0

    @property
    def texts(self) -> bool:
        return self.sentence_drop > 0 or self.mask_fraction > 0


class PairCollate:
    """Rows -> a PairBatch; samples one of each structure's texts per step (CLaC/CLaSP), optionally
    augmented (then graphs are rebuilt from the moved atoms, and texts go through the tower)."""

    def __init__(self, data: Dataset, graphs: GraphStore, pool: TextPool | None = None, text_features=None,
                 formula_features=None, symmetry=None, sample_texts: bool = True,
                 augmentation: Augmentation | None = None, free_features=None, potential=None,
                 views: int = 1):
        self.data = data
        self.graphs = graphs  # the dataset's graphs, checked against the model's graph settings
        self.pool = pool or data.own
        self.augmentation = augmentation or Augmentation()
        self.text_features = None if self.augmentation.texts else text_features
        self.free_features = None if self.augmentation.texts else free_features  # of pool.formula_free
        if self.augmentation.formula_free and self.pool.formula_free is None:
            raise ValueError("formula_free augmentation needs a pool with formula-free twins (text_pool(..., formula_free=True))")
        self.formula_features = formula_features
        self.symmetry = symmetry
        self.potential = potential
        self.sample_texts = sample_texts
        self.views = views

    def __call__(self, rows: list[int]) -> PairBatch:
        rows_t = torch.as_tensor(rows, dtype=torch.long)
        choices = []
        for r in rows:
            options = self.pool.row_texts[r]
            k = int(torch.randint(len(options), ())) if self.sample_texts and len(options) > 1 else 0
            choices.append(options[k])
        text_ids = torch.as_tensor(choices, dtype=torch.long)
        views = [self._view(rows, rows_t, text_ids) for _ in range(self.views)]
        if len(views) == 2:
            views[0].second_view = views[1]
        return views[0]

    def _view(self, rows, rows_t, text_ids) -> PairBatch:
        aug = self.augmentation
        rng = None
        if aug.texts or aug.crystals:  # drawn from the seeded torch RNG, so runs repeat
            rng = np.random.default_rng(int(torch.randint(2**31 - 1, ())))
        ids = text_ids.tolist()
        swap = (torch.rand(len(ids)) < aug.formula_free) if aug.formula_free else torch.zeros(len(ids), dtype=torch.bool)
        texts = [self.pool.formula_free[i] if s else self.pool.texts[i] for i, s in zip(ids, swap.tolist())]
        features = None
        if self.text_features is not None:
            features = self.text_features[text_ids]
            if swap.any():
                features[swap] = self.free_features[text_ids[swap]]
        if aug.texts:
            from ..augment import augment_text

            texts = [augment_text(t, rng, aug.mask_token, aug.sentence_drop, aug.mask_fraction) for t in texts]
        graphs = [self._graph(r, rng) if aug.crystals else self.graphs[r] for r in rows]
        return PairBatch(
            graphs=collate_graphs(graphs),
            rows=rows_t,
            text_ids=text_ids,
            text_features=features,
            formula_features=None if self.formula_features is None else self.formula_features[rows_t],
            symmetry=None if self.symmetry is None else (self.symmetry[0][rows_t], self.symmetry[1][rows_t]),
            potential=None if self.potential is None else self.potential[rows_t],
            texts=texts,
        )

    def _graph(self, row: int, rng: np.random.Generator):
        """The graph of a displaced and strained copy; the stored graph if that copy cannot be built."""
        from ..augment import augment_crystal
        from ..graphs import build_graph
        from ..structures import StructureError

        try:
            crystal = augment_crystal(self.data.crystal(row), rng, self.augmentation.max_displacement,
                                      self.augmentation.max_strain)
            return build_graph(crystal, self.graphs.config)
        except (StructureError, ValueError):
            return self.graphs[row]

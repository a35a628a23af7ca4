"""A built dataset opened for training and evaluation: rows, graphs, and frozen-tower text features.

Text features are the frozen tower's pooled outputs, computed once per dataset and cached in the
dataset directory (`text_cache/`), so training epochs never run the transformer.

A `TextPool` is what a structure may be paired with in a step: the dataset's own texts, or texts
derived from it (keywords, summaries, descriptions; see data/derived.py). Validation and evaluation
always use the dataset's own texts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..graphs import GraphStore
from .batching import GraphBatch, collate_graphs
from .build import GRAPHS_DIR, PAIRS_FILE
from .derived import ORIGINAL, read_texts

_COLUMNS_NOT_NEEDED = {"cif"}  # the graphs are cached; CIF text is read only for augmentation


@dataclass
class TextPool:
    """Distinct texts, and for each dataset row the indices of its texts (possibly none)."""

    texts: list[str]
    row_texts: list[np.ndarray]

    @classmethod
    def from_lists(cls, per_row) -> "TextPool":
        index: dict[str, int] = {}
        row_texts = [np.array([index.setdefault(t, len(index)) for t in texts], dtype=np.int64) for texts in per_row]
        return cls(list(index), row_texts)

    def has_text(self, rows: np.ndarray) -> np.ndarray:
        return np.array([len(self.row_texts[int(r)]) > 0 for r in rows], dtype=bool)


class PairData:
    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        if not (self.directory / PAIRS_FILE).is_file():
            raise FileNotFoundError(f"{self.directory} is not a crystalclip dataset (no {PAIRS_FILE}); "
                                    f"build one with `crystalclip data build`")
        import pyarrow.parquet as pq

        columns = [c for c in pq.read_schema(self.directory / PAIRS_FILE).names if c not in _COLUMNS_NOT_NEEDED]
        self.table = pd.read_parquet(self.directory / PAIRS_FILE, columns=columns)
        self.graphs = GraphStore.open(self.directory / GRAPHS_DIR)
        self._cifs: list[str] | None = None
        if len(self.graphs) != len(self.table):
            raise ValueError(f"{self.directory}: {len(self.graphs)} graphs for {len(self.table)} rows; rebuild it")
        self.own = TextPool.from_lists(self.table["texts"])  # every distinct text once
        self.texts, self.row_texts = self.own.texts, self.own.row_texts
        self.formulas = self.table["formula"].tolist()

    def text_pool(self, kinds: str | list[str] = ORIGINAL) -> TextPool:
        """The dataset's own texts ("pairs") and/or derived kinds, merged per row."""
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        if kinds == [ORIGINAL]:
            return self.own
        per_row = [[] for _ in range(len(self.table))]
        for kind in kinds:
            if kind == ORIGINAL:
                for row, texts in enumerate(self.table["texts"]):
                    per_row[row].extend(texts)
                continue
            derived = read_texts(self.directory, kind)
            for row, id_ in enumerate(self.table["id"]):
                per_row[row].extend(derived.get(id_, ()))
        return TextPool.from_lists(per_row)

    def crystal(self, row: int):
        """The structure of a row, parsed again from its CIF (for augmentations that move atoms)."""
        import pyarrow.parquet as pq

        from ..structures import parse_cif

        if self._cifs is None:
            self._cifs = pq.read_table(self.directory / PAIRS_FILE, columns=["cif"]).column("cif").to_pylist()
        id_ = self.table["id"].iat[row]
        crystals = parse_cif(self._cifs[row], id_)
        return next((c for c in crystals if c.id == id_), crystals[0])

    def rows(self, split: str | None = None, sources: list[str] | None = None) -> np.ndarray:
        mask = np.ones(len(self.table), bool)
        if split is not None:
            mask &= (self.table["split"] == split).to_numpy()
        if sources:
            mask &= self.table["source"].isin(sources).to_numpy()
        return np.nonzero(mask)[0]

    def text_features(self, tower, pool: TextPool | None = None) -> torch.Tensor:
        """The frozen tower's features of a pool's texts (default: the dataset's own), cached in the dataset."""
        return self._cached((pool or self.own).texts, tower)

    def formula_features(self, tower) -> torch.Tensor:
        """The frozen tower's features of each row's reduced formula (the composition channel)."""
        return self._cached(self.formulas, tower)

    def _cached(self, strings: list[str], tower) -> torch.Tensor:
        from .text_cache import cached_text_embeddings

        return torch.from_numpy(np.ascontiguousarray(cached_text_embeddings(self.directory, strings, tower)))


@dataclass
class PairBatch:
    graphs: GraphBatch
    rows: torch.Tensor  # (B,) dataset row of each structure
    text_ids: torch.Tensor  # (B,) index into the pool's texts of the text paired in this step
    text_features: torch.Tensor | None  # (B, tower dim) when the tower is frozen and texts are not augmented
    formula_features: torch.Tensor | None  # (B, tower dim)
    texts: list[str]
    second_view: "PairBatch | None" = None  # another augmentation of the same rows (intramodal terms)


@dataclass
class Augmentation:
    """CLaC's views: atoms displaced (fraction of the minimum distance), cell strained, sentences
    dropped and shuffled, words masked. Zero turns a part off."""

    max_displacement: float = 0.0
    max_strain: float = 0.0
    sentence_drop: float = 0.0
    mask_fraction: float = 0.0
    mask_token: str = "[MASK]"

    @property
    def crystals(self) -> bool:
        return self.max_displacement > 0 or self.max_strain > 0

    @property
    def texts(self) -> bool:
        return self.sentence_drop > 0 or self.mask_fraction > 0


class PairCollate:
    """Rows -> a PairBatch; samples one of each structure's texts per step (CLaC/CLaSP), optionally
    augmented (then graphs are rebuilt from the moved atoms, and texts go through the tower)."""

    def __init__(self, data: PairData, pool: TextPool | None = None, text_features=None, formula_features=None,
                 sample_texts: bool = True, augmentation: Augmentation | None = None, views: int = 1):
        self.data = data
        self.pool = pool or data.own
        self.augmentation = augmentation or Augmentation()
        self.text_features = None if self.augmentation.texts else text_features
        self.formula_features = formula_features
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
        texts = [self.pool.texts[i] for i in text_ids.tolist()]
        if aug.texts:
            from ..augment import augment_text

            texts = [augment_text(t, rng, aug.mask_token, aug.sentence_drop, aug.mask_fraction) for t in texts]
        graphs = [self._graph(r, rng) if aug.crystals else self.data.graphs[r] for r in rows]
        return PairBatch(
            graphs=collate_graphs(graphs),
            rows=rows_t,
            text_ids=text_ids,
            text_features=None if self.text_features is None else self.text_features[text_ids],
            formula_features=None if self.formula_features is None else self.formula_features[rows_t],
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
            return build_graph(crystal, self.data.graphs.config)
        except (StructureError, ValueError):
            return self.data.graphs[row]

"""A built dataset opened for training and evaluation: rows, graphs, and frozen-tower text features.

Text features are the frozen tower's pooled outputs, computed once per dataset and cached in the
dataset directory (`text_cache/`), so training epochs never run the transformer.
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

_COLUMNS_NOT_NEEDED = {"cif"}  # the graphs are cached; the CIF text is only for export


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
        if len(self.graphs) != len(self.table):
            raise ValueError(f"{self.directory}: {len(self.graphs)} graphs for {len(self.table)} rows; rebuild it")
        # every distinct text once; each row points at its texts
        self.texts: list[str] = []
        index: dict[str, int] = {}
        self.row_texts: list[np.ndarray] = []
        for texts in self.table["texts"]:
            self.row_texts.append(np.array([index.setdefault(t, len(index)) for t in texts], dtype=np.int64))
        self.texts = list(index)
        self.formulas = self.table["formula"].tolist()

    def rows(self, split: str | None = None, sources: list[str] | None = None) -> np.ndarray:
        mask = np.ones(len(self.table), bool)
        if split is not None:
            mask &= (self.table["split"] == split).to_numpy()
        if sources:
            mask &= self.table["source"].isin(sources).to_numpy()
        return np.nonzero(mask)[0]

    def text_features(self, tower) -> torch.Tensor:
        """The frozen tower's features of self.texts, computed once and cached in the dataset."""
        return self._cached(self.texts, tower)

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
    text_ids: torch.Tensor  # (B,) index into PairData.texts of the text paired in this step
    text_features: torch.Tensor | None  # (B, tower dim) when the tower is frozen
    formula_features: torch.Tensor | None  # (B, tower dim)
    texts: list[str]


class PairCollate:
    """Rows -> a PairBatch; samples one of each structure's texts per step (CLaC/CLaSP)."""

    def __init__(self, data: PairData, text_features=None, formula_features=None, sample_texts: bool = True):
        self.data = data
        self.text_features = text_features
        self.formula_features = formula_features
        self.sample_texts = sample_texts

    def __call__(self, rows: list[int]) -> PairBatch:
        rows_t = torch.as_tensor(rows, dtype=torch.long)
        choices = []
        for r in rows:
            options = self.data.row_texts[r]
            k = int(torch.randint(len(options), ())) if self.sample_texts and len(options) > 1 else 0
            choices.append(options[k])
        text_ids = torch.as_tensor(choices, dtype=torch.long)
        return PairBatch(
            graphs=collate_graphs([self.data.graphs[r] for r in rows]),
            rows=rows_t,
            text_ids=text_ids,
            text_features=None if self.text_features is None else self.text_features[text_ids],
            formula_features=None if self.formula_features is None else self.formula_features[rows_t],
            texts=[self.data.texts[i] for i in choices],
        )

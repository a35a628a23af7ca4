"""Embedding many rows of a dataset at once, in batches, for validation, evaluation and indexing."""
from __future__ import annotations

import numpy as np
import torch

from .data.batching import collate_graphs
from .data.dataset import Dataset
from .graphs import GraphStore


def row_symmetry(model, data: Dataset):
    """The dataset's symmetry-channel inputs under the model's settings, or None when it has none."""
    config = model.config.symmetry
    return data.symmetry_features(config.symprec) if config.enabled else None


def row_potential(model, data: Dataset, progress=None):
    """The dataset's cached frozen CHGNet features when the model reads them, else None."""
    if not model.reads_potential:
        return None
    from .models.chgnet import chgnet_features, chgnet_identity

    return data.potential_features(chgnet_features, chgnet_identity(), progress=progress)


def row_inputs(model, data: Dataset) -> dict:
    """What `embed_rows` reads of every row besides the rows themselves, from the dataset's stores and
    caches (graphs checked against the model's settings, memory-mapped formula features, symmetry and
    potential inputs): computed once, never again per structure."""
    formulas = data.feature_rows(data.formulas, model.formula_tower) if model.config.composition_channel else None
    return {"graphs": data.check_graphs(model.config.graph), "formula_features": formulas,
            "symmetry": row_symmetry(model, data), "potential": row_potential(model, data)}


@torch.no_grad()
def embed_rows(model, graphs: GraphStore, rows: np.ndarray, formula_features: torch.Tensor | None,
               batch_size: int = 256, progress=None, symmetry=None, potential=None) -> np.ndarray:
    """(len(rows), D) unit-norm crystal embeddings of dataset rows, from their stored graphs (checked
    against the model's graph settings: `Dataset.check_graphs`)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device  # batches go where the model is (a GPU when training there)
    out = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        batch = collate_graphs([graphs[int(r)] for r in chunk]).to(device)
        index = torch.tensor(np.asarray(chunk))  # a copy: rows may be a read-only view
        formulas = None if formula_features is None else formula_features[index].to(device)
        sym = None if symmetry is None else (symmetry[0][index].to(device), symmetry[1][index].to(device))
        pot = None if potential is None else potential[index].to(device)
        out.append(model.embed_crystals(batch, formulas if model.config.composition_channel else None, sym,
                                        pot).float().cpu())
        if progress:
            progress(min(start + batch_size, len(rows)), len(rows))
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, model.config.embed_dim), np.float32)


@torch.no_grad()
def embed_text_features(model, features: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
    """(N, D) unit-norm text embeddings from the tower's pooled features."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model.embed_text_features(features[i:i + batch_size].to(device)).float().cpu()
           for i in range(0, len(features), batch_size)]
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, model.config.embed_dim), np.float32)


def split_queries(data: Dataset, rows: np.ndarray) -> tuple[np.ndarray, list[set[int]]]:
    """The distinct texts of `rows` (as indices into data.texts) and, for each, the positions in
    `rows` of the structures it belongs to: a title shared by a series of structures is one query
    that any of them answers."""
    owners: dict[int, set[int]] = {}
    for position, row in enumerate(rows):
        for t in data.row_texts[int(row)]:
            owners.setdefault(int(t), set()).add(position)
    text_ids = np.array(sorted(owners), dtype=np.int64)
    return text_ids, [owners[int(t)] for t in text_ids]

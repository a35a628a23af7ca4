"""`crystalclip evaluate`: one model on one split, with the protocol of DESIGN.md and two baselines.

Embedders ("systems") map the split's structures and texts into one space:
- the model itself;
- the composition-only baseline: a model of the same recipe whose crystal side sees only the bag
  of elements (and the formula channel, if the recipe has one), so the gap to it is what geometry adds;
- the formula-string baseline: the frozen text tower reads the reduced formula ("SrTiO3") and that
  embedding stands for the structure; texts are the tower's own embeddings. No training at all.
Every system is scored on the same queries, pool and labels.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..data.pairs import PairData
from ..encoding import embed_rows, embed_text_features, split_queries
from ..text.masking import mask_formulas
from .labels import keyword_labels, property_labels
from .plots import plot_embedding_map, plot_recall_at_k, plot_roc_curves
from .retrieval import retrieval_metrics
from .zeroshot import zero_shot_metrics

MP40_PROPERTY_LABELS = ("metallic", "stable")


class _System:
    """Structures and texts of one split embedded by one system; texts embedded on demand, once."""

    def __init__(self, name: str, crystal_emb: np.ndarray, embed_texts):
        self.name, self.crystal_emb, self._embed = name, crystal_emb, embed_texts
        self._seen: dict[str, np.ndarray] = {}

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self._seen))
        if new:
            self._seen.update(zip(new, self._embed(new)))
        return np.stack([self._seen[t] for t in texts])


def _tower_features(data: PairData, tower):
    """Texts -> the frozen tower's features, through the dataset's text cache (split texts are there)."""
    from ..data.text_cache import cached_text_embeddings

    return lambda texts: torch.from_numpy(cached_text_embeddings(data.directory, list(texts), tower))


def _model_system(name: str, model, data: PairData, rows: np.ndarray) -> _System:
    clip = model.clip
    crystal_emb = embed_rows(clip, data, rows, data.formula_features(clip.formula_tower))
    if not clip.text_tower.frozen:
        return _System(name, crystal_emb, model.encode_texts)
    features = _tower_features(data, clip.text_tower)
    return _System(name, crystal_emb, lambda texts: embed_text_features(clip, features(texts)))


def _formula_system(model, data: PairData, rows: np.ndarray) -> _System:
    tower = model.clip.formula_tower  # the pretrained tower, frozen
    features = _tower_features(data, tower)

    def unit(x: torch.Tensor) -> np.ndarray:
        return torch.nn.functional.normalize(x, dim=-1).numpy()

    formulas = data.formula_features(tower)[torch.as_tensor(rows)]
    return _System("formula_baseline", unit(formulas), lambda texts: unit(features(texts)))


def _retrieval(system: _System, data: PairData, rows: np.ndarray, positions: np.ndarray, mask: bool, ci: bool) -> dict:
    """Retrieval among `rows[positions]` (one source, or all); texts optionally formula-masked."""
    sub = rows[positions]
    text_ids, owners = split_queries(data, sub)
    texts = [data.texts[i] for i in text_ids]
    if mask:  # masked texts can coincide: merge their owners so each query stays unique
        merged: dict[str, set[int]] = {}
        for text, owner in zip(map(mask_formulas, texts), owners):
            merged.setdefault(text, set()).update(owner)
        texts, owners = list(merged), list(merged.values())
    result = retrieval_metrics(system.embed_texts(texts), system.crystal_emb[positions], owners, ci=ci)
    return result


def _zero_shot(system: _System, data: PairData, rows: np.ndarray, ci: bool) -> dict:
    table = data.table.iloc[rows]
    out = {}
    amcsd = np.nonzero((table["source"] == "amcsd").to_numpy())[0]
    if len(amcsd):
        labels = keyword_labels(table["title"].iloc[amcsd].fillna("").tolist())
        prompts = system.embed_texts(list(labels))  # the prompt is the keyword itself (CLaSP)
        out.update(zero_shot_metrics(system.crystal_emb[amcsd], prompts, labels, ci=ci))
    mp40 = np.nonzero((table["source"] == "mp40").to_numpy())[0]
    if len(mp40):
        labels, valid = property_labels(table.iloc[mp40], crystal_system=False)
        labels = {k: labels[k] for k in MP40_PROPERTY_LABELS if k in labels}
        if labels:
            prompts = system.embed_texts(list(labels))
            out.update(zero_shot_metrics(system.crystal_emb[mp40], prompts, labels, valid=valid, ci=ci))
    return out


def _system_report(system: _System, data: PairData, rows: np.ndarray, ci: bool) -> dict:
    everything = np.arange(len(rows))
    report = {k: v for k, v in _retrieval(system, data, rows, everything, False, ci).items() if k != "ranks"}
    sources = data.table["source"].to_numpy()[rows]
    report["by_source"] = {}
    for source in sorted(set(sources)):
        positions = np.nonzero(sources == source)[0]
        report["by_source"][source] = _retrieval(system, data, rows, positions, False, ci)
        if source == "mp40":  # captions name the formula: also measure with formulas masked
            report["by_source"]["mp40_masked"] = _retrieval(system, data, rows, positions, True, ci)
    report["zero_shot"] = _zero_shot(system, data, rows, ci)
    return report


def evaluate(model, data_dir: str | os.PathLike, split: str = "test", composition_model=None,
             ci: bool = True, plots_dir: str | os.PathLike | None = None) -> dict:
    """The evaluation report (a JSON-ready dict); `model` and `composition_model` are api.Model."""
    data = PairData(data_dir)
    rows = data.rows(split)
    if len(rows) == 0:
        raise ValueError(f"{data_dir} has no rows in split {split!r}")
    systems = [_model_system("model", model, data, rows), _formula_system(model, data, rows)]
    if composition_model is not None:
        systems.insert(1, _model_system("composition_baseline", composition_model, data, rows))
    reports = {s.name: _system_report(s, data, rows, ci) for s in systems}
    result = dict(reports.pop("model"))
    result["split"] = split
    result["convention"] = ("text->crystal: unique texts of the split are the queries; a text shared by several "
                            "structures is a hit when any of them is retrieved; pool = every structure of the split")
    for name, report in reports.items():
        result[name] = report
    if plots_dir is not None:
        _plots(Path(plots_dir), systems, data, rows)
    return _jsonable(result)


def _plots(out: Path, systems: list[_System], data: PairData, rows: np.ndarray) -> None:
    from .retrieval import retrieval_ranks

    out.mkdir(parents=True, exist_ok=True)
    model = systems[0]
    text_ids, owners = split_queries(data, rows)
    texts = [data.texts[i] for i in text_ids]
    curves, n_relevant = {}, None
    for system in systems:
        ranks = retrieval_ranks(system.embed_texts(texts), system.crystal_emb, owners)["text_to_crystal"]
        curves[system.name] = ranks.ranks
        n_relevant = ranks.n_relevant
    plot_recall_at_k(curves, n_relevant, len(rows), out / "recall_at_k.png")
    table = data.table.iloc[rows]
    amcsd = np.nonzero((table["source"] == "amcsd").to_numpy())[0]
    if len(amcsd):
        labels = keyword_labels(table["title"].iloc[amcsd].fillna("").tolist())
        scores = model.crystal_emb[amcsd] @ model.embed_texts(list(labels)).T
        plot_roc_curves({k: scores[:, i] for i, k in enumerate(labels)}, labels, out / "roc_amcsd_keywords.png")
    system = table["crystal_system"] if "crystal_system" in table.columns else None
    colours = table["source"].astype(str).tolist()
    plot_embedding_map(model.crystal_emb, colours, out / "map_by_source.png", max_points=2000)
    if system is not None and system.notna().sum() > 20:
        known = np.nonzero(system.notna().to_numpy())[0]
        plot_embedding_map(model.crystal_emb[known], system.iloc[known].astype(str).tolist(),
                           out / "map_by_crystal_system.png", max_points=2000)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if k != "ranks"}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value

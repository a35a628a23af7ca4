"""`crystalclip evaluate`: one model on one split, with the protocol of DESIGN.md and two baselines.

Embedders ("systems") map the split's structures and texts into one space:
- the model itself;
- the composition-only baseline: a model of the same recipe whose crystal side sees only the bag
  of elements (and the formula channel, if the recipe has one), so the gap to it is what geometry adds;
- the formula-string baseline: the frozen text tower reads the reduced formula ("SrTiO3") and that
  embedding stands for the structure; texts are the tower's own embeddings. No training at all.
Every system is scored on the same queries, pool and labels. Besides retrieval and zero-shot
labels, each system gets the other tests of the CLaC / CLAMP / CLaSP papers: multiple choice among
four formula-masked captions, property-targeted queries, and linear probes fitted on the train
split's mp40 embeddings. ``headline(report)`` pulls out the numbers a recipe comparison needs.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.dataset import Dataset
from ..errors import BadInput
from ..encoding import embed_rows, embed_text_features, row_potential, row_symmetry, split_queries
from ..text.masking import mask_formulas
from .choice import choice_embeddings, choice_sets, multiple_choice_metrics
from .labels import KEYWORDS, keyword_labels, mof_labels, property_labels
from .plots import plot_embedding_map, plot_recall_at_k, plot_roc_curves
from .probe import logistic_probe, ridge_probe
from .property_queries import PROPERTY_QUERIES, property_query_metrics
from .retrieval import retrieval_metrics
from .structure import structure_metrics
from .zeroshot import zero_shot_metrics

MP40_PROPERTY_LABELS = ("metallic", "stable")


class _System:
    """Structures and texts of one split embedded by one system; texts embedded on demand, once.
    ``embed_rows(rows)`` embeds other dataset rows (the train split, for linear probes)."""

    def __init__(self, name: str, crystal_emb: np.ndarray, embed_texts, embed_rows=None):
        self.name, self.crystal_emb, self._embed = name, crystal_emb, embed_texts
        self.embed_rows = embed_rows
        self._seen: dict[str, np.ndarray] = {}

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self._seen))
        if new:
            self._seen.update(zip(new, self._embed(new)))
        return np.stack([self._seen[t] for t in texts])


def _tower_features(data: Dataset, tower):
    """Texts -> the frozen tower's features, through the dataset's text cache (split texts are there)."""
    return lambda texts: data.tower_features(list(texts), tower)


def _model_system(name: str, model, data: Dataset, rows: np.ndarray) -> _System:
    clip = model.clip
    formulas = data.formula_features(clip.formula_tower) if clip.config.composition_channel else None

    graphs = data.check_graphs(clip.config.graph)
    symmetry, potential = row_symmetry(clip, data), row_potential(clip, data)

    def crystals(some_rows: np.ndarray) -> np.ndarray:
        return embed_rows(clip, graphs, some_rows, formulas, symmetry=symmetry, potential=potential)

    if not clip.text_tower.frozen:
        return _System(name, crystals(rows), model.encode_texts, crystals)
    features = _tower_features(data, clip.text_tower)
    return _System(name, crystals(rows), lambda texts: embed_text_features(clip, features(texts)), crystals)


def _formula_system(model, data: Dataset, rows: np.ndarray) -> _System:
    tower = model.clip.formula_tower  # the pretrained tower, frozen
    features = _tower_features(data, tower)

    def unit(x: torch.Tensor) -> np.ndarray:
        return torch.nn.functional.normalize(x, dim=-1).numpy()

    formulas = data.formula_features(tower)

    def crystals(some_rows: np.ndarray) -> np.ndarray:
        return unit(formulas[torch.as_tensor(some_rows)])

    return _System("formula_baseline", crystals(rows), lambda texts: unit(features(texts)), crystals)


def _retrieval(system: _System, data: Dataset, rows: np.ndarray, positions: np.ndarray, mask: bool, ci: bool) -> dict:
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


def _zero_shot(system: _System, data: Dataset, rows: np.ndarray, ci: bool) -> dict:
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
    mofs = np.nonzero((table["source"] == "core-mof").to_numpy())[0]
    if len(mofs):
        labels, valid, prompts = mof_labels(table.iloc[mofs])
        if labels:
            emb = system.embed_texts([prompts[k] for k in labels])
            out.update(zero_shot_metrics(system.crystal_emb[mofs], emb, labels, valid=valid, ci=ci))
    return out


def _multiple_choice(system: _System, data: Dataset, rows: np.ndarray, ci: bool) -> dict:
    """Four-way choice of the own caption, formulas masked; distractors from the same scope (the
    whole split for "overall", the source for "by_source"). Items depend on the data only (seeded),
    so every system answers the same questions."""
    texts = [[data.texts[t] for t in data.row_texts[int(r)]] for r in rows]
    sources = data.table["source"].to_numpy()[rows]

    def scope(positions: np.ndarray) -> dict:
        items, choices = choice_sets([texts[i] for i in positions], n_choices=4, seed=0, mask=True)
        emb = choice_embeddings(choices, system.embed_texts)
        return multiple_choice_metrics(system.crystal_emb[positions[items]], emb, ci=ci)

    out = {"masked": True, "chance": 0.25, "overall": scope(np.arange(len(rows)))}
    out["by_source"] = {s: scope(np.nonzero(sources == s)[0]) for s in sorted(set(sources))}
    return out


def _property_queries(system: _System, data: Dataset, rows: np.ndarray, ci: bool) -> dict:
    """Queries for a value on a fixed grid (PROPERTY_QUERIES) among the split's structures of the
    property's source; top 10 each."""
    table = data.table.iloc[rows]
    out = {}
    for name, (source, column, template, grid) in PROPERTY_QUERIES.items():
        positions = np.nonzero((table["source"] == source).to_numpy())[0]
        if column not in table.columns or not len(positions):
            continue
        values = pd.to_numeric(table[column].iloc[positions], errors="coerce").to_numpy(dtype=np.float64)
        queries = [template.format(x=x) for x in grid]
        result = property_query_metrics(system.crystal_emb[positions], system.embed_texts(queries), grid,
                                        values, k=10, ci=ci)
        out[name] = {"source": source, "template": template, "ci_over": "queries", **result}
    return out


def _linear_probe(system: _System, data: Dataset, rows: np.ndarray, train_rows: np.ndarray, ci: bool) -> dict:
    """Ridge (band gap) and logistic (metallic, stable) probes: fit on the train split's mp40 rows,
    scored on the evaluated split's mp40 rows."""
    positions = np.nonzero(data.table["source"].to_numpy()[rows] == "mp40")[0]
    if not len(positions) or not len(train_rows) or system.embed_rows is None:
        return {}
    train, test = data.table.iloc[train_rows], data.table.iloc[rows[positions]]
    x_train, x_test = system.embed_rows(train_rows), system.crystal_emb[positions]
    out = {"fit_split": "train", "source": "mp40"}
    if "band_gap" in data.table.columns:
        out["band_gap"] = ridge_probe(x_train, pd.to_numeric(train["band_gap"], errors="coerce").to_numpy(float),
                                      x_test, pd.to_numeric(test["band_gap"], errors="coerce").to_numpy(float), ci=ci)
    train_labels, train_valid = property_labels(train, crystal_system=False)
    test_labels, test_valid = property_labels(test, crystal_system=False)
    for name in MP40_PROPERTY_LABELS:
        if name in train_labels:
            out[name] = logistic_probe(x_train, train_labels[name], x_test, test_labels[name], ci=ci,
                                       valid_train=train_valid[name], valid_test=test_valid[name])
    return out


def _system_report(system: _System, data: Dataset, rows: np.ndarray, ci: bool,
                   probe_rows: np.ndarray | None = None) -> dict:
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
    report["multiple_choice"] = _multiple_choice(system, data, rows, ci)
    report["property_queries"] = _property_queries(system, data, rows, ci)
    report["linear_probe"] = (_linear_probe(system, data, rows, probe_rows, ci) if probe_rows is not None
                              else {"skipped": "the probes are fitted on the train split"})
    report["structure"] = structure_metrics(system.crystal_emb, system.embed_texts, data, rows)
    return report


def evaluate(model, data_dir: str | os.PathLike, split: str = "test", composition_model=None,
             ci: bool = True, plots_dir: str | os.PathLike | None = None) -> dict:
    """The evaluation report (a JSON-ready dict); `model` and `composition_model` are api.Model."""
    data = Dataset(data_dir)
    rows = data.rows(split)
    if len(rows) == 0:
        raise BadInput(f"{data_dir} has no rows in split {split!r}")
    systems = [_model_system("model", model, data, rows), _formula_system(model, data, rows)]
    if composition_model is not None:
        systems.insert(1, _model_system("composition_baseline", composition_model, data, rows))
    probe_rows = None if split == "train" else data.rows("train", ["mp40"])
    reports = {s.name: _system_report(s, data, rows, ci, probe_rows) for s in systems}
    result = dict(reports.pop("model"))
    result["split"] = split
    result["convention"] = ("text->crystal: unique texts of the split are the queries; a text shared by several "
                            "structures is a hit when any of them is retrieved; pool = every structure of the split")
    for name, report in reports.items():
        result[name] = report
    if plots_dir is not None:
        _plots(Path(plots_dir), systems, data, rows)
    return _jsonable(result)


SYSTEMS = ("model", "composition_baseline", "formula_baseline")


def headline(report: dict, min_positives: int = 5) -> dict:
    """``{system: {metric: value}}`` for tabulating recipes side by side; the main numbers come as
    ``{"value": x, "ci": [low, high]}``, the rest as plain floats (None when not measured).

    Zero-shot means are over the labels that could be scored with >= ``min_positives`` positives,
    per group: AMCSD keywords, mp40 properties, CoRE MOF labels ("mof:" keys).
    """
    def with_ci(value, ci):
        return {"value": value, "ci": ci}

    groups = {"amcsd": lambda k: k in KEYWORDS, "mp40": lambda k: k in MP40_PROPERTY_LABELS,
              "mof": lambda k: k.startswith("mof:")}
    out = {}
    for name in SYSTEMS:
        r = report if name == "model" else report.get(name)
        if r is None:
            continue
        row = {"t2c_R@10": with_ci(r["text_to_crystal"]["R@10"],
                                   r.get("ci", {}).get("text_to_crystal", {}).get("R@10")),
               "c2t_R@10": r["crystal_to_text"]["R@10"]}
        for source, sub in r.get("by_source", {}).items():
            row[f"t2c_R@10[{source}]"] = sub["text_to_crystal"]["R@10"]
        for group, member in groups.items():
            aucs = [m["roc_auc"] for k, m in r.get("zero_shot", {}).items()
                    if member(k) and m["roc_auc"] is not None and m["n_pos"] >= min_positives]
            row[f"zero_shot_auc[{group}]"] = float(np.mean(aucs)) if aucs else None
        overall = r.get("multiple_choice", {}).get("overall")
        if overall:
            row["choice_acc_masked"] = with_ci(overall["accuracy"], overall.get("ci"))
        for prop, sub in r.get("property_queries", {}).items():
            row[f"query_spearman[{prop}]"] = with_ci(sub["spearman"], sub.get("ci"))
        probe = r.get("linear_probe", {})
        if "band_gap" in probe:
            row["probe_band_gap_r2"] = with_ci(probe["band_gap"]["r2"], probe["band_gap"].get("ci", {}).get("r2"))
        for label in MP40_PROPERTY_LABELS:
            if label in probe:
                row[f"probe_{label}_auc"] = with_ci(probe[label]["roc_auc"],
                                                    (probe[label].get("ci") or {}).get("roc_auc"))
        structure = r.get("structure", {})
        for key in ("crystal_system_top1", "structure_type_top1", "R@10_descriptions", "R@10_descriptions_formula_free"):
            if key in structure:
                row[f"mp_{key}"] = structure[key]
        out[name] = row
    return out


def format_value(value) -> str:
    """A headline value as text: "0.571 [0.531, 0.607]" for {"value", "ci"}, "–" when not measured."""
    if isinstance(value, dict):
        text, ci = format_value(value.get("value")), value.get("ci")
        return f"{text} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and value.get("value") is not None else text
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _plots(out: Path, systems: list[_System], data: Dataset, rows: np.ndarray) -> None:
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

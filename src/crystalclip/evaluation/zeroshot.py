"""Zero-shot classification (CLaSP protocol): score = cosine(structure, label prompt) -> ROC-AUC, AP.

Every label is reported, including those that cannot be scored: a label with no positive or no
negative among the valid structures gets ``roc_auc = ap = None`` with its counts. Missing labels
(e.g. a property not known for a structure) are excluded per label: pass NaN in a float label
array, or a ``valid`` mask (``property_labels`` returns both labels and masks).

CIs resample structures (the valid ones of each label) with replacement; resamples with a single
class are skipped, and ``ci["n_used"]`` says how many were used.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from crystalclip.evaluation.bootstrap import (resample_weights, weighted_average_precision,
                                              weighted_roc_auc)

__all__ = ["zero_shot_scores", "zero_shot_metrics", "binary_metrics", "label_arrays"]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1)


def zero_shot_scores(crystal_emb: np.ndarray, prompt_emb: np.ndarray) -> np.ndarray:
    """(N, L) cosine similarities between structures and label prompts (rows re-normalised)."""
    return _unit(crystal_emb) @ _unit(prompt_emb).T


def label_arrays(y, valid=None) -> tuple[np.ndarray, np.ndarray]:
    """(bool labels, bool valid mask) from a bool array, a float array with NaN for missing, or a
    pandas nullable boolean array; ``valid`` further restricts the mask."""
    arr = np.asarray(y, dtype=object) if str(getattr(y, "dtype", "")) == "boolean" else np.asarray(y)
    if arr.dtype == object:
        import pandas as pd

        ok = ~np.asarray(pd.isna(arr), dtype=bool)
        lab = np.array([bool(v) if o else False for v, o in zip(arr, ok)], dtype=bool)
    elif arr.dtype.kind == "f":
        ok = ~np.isnan(arr)
        lab = np.where(ok, arr, 0) != 0
    else:
        ok = np.ones(arr.shape, dtype=bool)
        lab = arr.astype(bool)
    if valid is not None:
        ok = ok & np.asarray(valid, dtype=bool)
    return lab, ok


def binary_metrics(scores: np.ndarray, y, valid=None, *, ci: bool = True, n_boot: int = 1000,
                   seed: int = 0, level: float = 0.95, batch: int = 100) -> dict:
    """ROC-AUC and AP of one score vector against one binary label (missing labels excluded)."""
    lab, ok = label_arrays(y, valid)
    s = np.asarray(scores, dtype=np.float64)[ok]
    lab = lab[ok]
    n_pos = int(lab.sum())
    n_neg = int(len(lab) - n_pos)
    out = {"roc_auc": None, "ap": None, "n_pos": n_pos, "n_neg": n_neg,
           "n_missing": int((~ok).sum()), "prevalence": n_pos / len(lab) if len(lab) else None}
    if n_pos == 0 or n_neg == 0:
        if ci:
            out["ci"] = {"roc_auc": None, "ap": None, "n_used": 0}
        return out
    one = np.ones((1, len(s)))
    out["roc_auc"] = float(weighted_roc_auc(s, lab, one)[0])
    out["ap"] = float(weighted_average_precision(s, lab, one)[0])
    if ci:
        rng = np.random.default_rng(seed)
        aucs, aps = [], []
        for start in range(0, n_boot, batch):
            w = resample_weights(len(s), min(batch, n_boot - start), rng)
            aucs.append(weighted_roc_auc(s, lab, w))
            aps.append(weighted_average_precision(s, lab, w))
        auc = np.concatenate(aucs)
        ap = np.concatenate(aps)
        used = ~np.isnan(auc)
        alpha = (1 - level) / 2
        ci_out: dict = {"n_used": int(used.sum())}
        for name, v in (("roc_auc", auc), ("ap", ap)):
            ci_out[name] = [float(x) for x in np.quantile(v[used], [alpha, 1 - alpha])] if used.any() else None
        out["ci"] = ci_out
    return out


def zero_shot_metrics(crystal_emb: np.ndarray, prompt_emb: np.ndarray, labels: Mapping[str, np.ndarray],
                      ci: bool = True, *, valid: Mapping[str, np.ndarray] | None = None,
                      label_names: Sequence[str] | None = None, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict[str, dict]:
    """Per label: ``{"roc_auc", "ap", "n_pos", "n_neg", "n_missing", "prevalence", "ci": {...}}``.

    ``prompt_emb`` row i is the prompt of the i-th label in ``label_names`` (default: the order of
    ``labels``). The score of label l is the cosine similarity of a structure with prompt l.
    """
    names = list(label_names) if label_names is not None else list(labels)
    prompt_emb = np.atleast_2d(prompt_emb)
    if prompt_emb.shape[0] != len(names):
        raise ValueError(f"{prompt_emb.shape[0]} prompt embeddings for {len(names)} labels")
    scores = zero_shot_scores(crystal_emb, prompt_emb)
    out = {}
    for i, name in enumerate(names):
        y = labels[name]
        if len(y) != scores.shape[0]:
            raise ValueError(f"label {name!r} has {len(y)} values for {scores.shape[0]} structures")
        out[name] = binary_metrics(scores[:, i], y, None if valid is None else valid.get(name), ci=ci,
                                   n_boot=n_boot, seed=seed, level=level)
    return out

"""Percentile bootstrap confidence intervals, and weighted ROC-AUC / AP for fast resampling.

A bootstrap resample of N items is represented by integer weights (how often each item was drawn),
so ROC-AUC and average precision of 1,000 resamples are computed from one sort of the scores.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["bootstrap_ci", "resample_weights", "weighted_roc_auc", "weighted_average_precision"]


def resample_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) int32 counts: how many times each of n items is drawn in each resample."""
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = (idx + (np.arange(n_boot, dtype=np.int64) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.int32)


def bootstrap_ci(values, stat: Callable | None = None, n: int = 1000, seed: int = 0,
                 level: float = 0.95, batch: int = 100):
    """Percentile bootstrap CI of ``stat`` over resampled rows of ``values``.

    ``values`` is 1-D (items) -> returns ``(low, high)`` floats, or 2-D (items, metrics) -> returns
    ``(low, high)`` arrays with one entry per column (rows resampled jointly). ``stat`` defaults to
    the mean (fast path); a custom ``stat`` gets the resampled array and must return a scalar (1-D)
    or a vector (2-D). NaN statistics (e.g. undefined on a resample) are skipped; all-NaN -> NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    one_d = v.ndim == 1
    if one_d:
        v = v[:, None]
    m = v.shape[0]
    if m == 0:
        nan = np.full(v.shape[1], np.nan)
        return (float("nan"), float("nan")) if one_d else (nan, nan.copy())
    rng = np.random.default_rng(seed)
    stats = np.empty((n, v.shape[1]))
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        if stat is None:
            w = resample_weights(m, stop - start, rng).astype(np.float64)
            stats[start:stop] = (w @ v) / m
        else:
            for b in range(start, stop):
                idx = rng.integers(0, m, size=m)
                s = stat(v[idx, 0] if one_d else v[idx])
                stats[b] = np.asarray(s, dtype=np.float64).reshape(-1)
    alpha = (1.0 - level) / 2.0
    ok = ~np.isnan(stats)
    lo = np.full(v.shape[1], np.nan)
    hi = np.full(v.shape[1], np.nan)
    for j in range(v.shape[1]):
        if ok[:, j].any():
            lo[j], hi[j] = np.quantile(stats[ok[:, j], j], [alpha, 1.0 - alpha])
    if one_d:
        return float(lo[0]), float(hi[0])
    return lo, hi


def _groups(sorted_scores: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in a sorted array."""
    return np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])


def weighted_roc_auc(scores: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC (ties count 1/2, as sklearn) for each row of ``weights`` (B, N); NaN for one class."""
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    yy = y[order].astype(bool)
    w = np.atleast_2d(weights)[:, order].astype(np.float64)
    starts = _groups(s)
    wp = np.add.reduceat(w * yy, starts, axis=1)  # positive weight per tie group (ascending)
    wn = np.add.reduceat(w * ~yy, starts, axis=1)
    neg_below = np.cumsum(wn, axis=1) - wn
    num = np.sum(wp * (neg_below + 0.5 * wn), axis=1)
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def weighted_average_precision(scores: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average precision (sklearn's step definition, ties as one threshold) per row of ``weights``;
    NaN when a resample has no positive or no negative."""
    order = np.argsort(-scores, kind="mergesort")
    s = scores[order]
    yy = y[order].astype(bool)
    w = np.atleast_2d(weights)[:, order].astype(np.float64)
    starts = _groups(s)
    tp = np.cumsum(np.add.reduceat(w * yy, starts, axis=1), axis=1)
    fp = np.cumsum(np.add.reduceat(w * ~yy, starts, axis=1), axis=1)
    pos = tp[:, -1:]
    neg = fp[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1), 0.0)
        recall = tp / np.where(pos > 0, pos, 1)
    d_recall = np.diff(np.concatenate([np.zeros((len(w), 1)), recall], axis=1), axis=1)
    ap = np.sum(d_recall * precision, axis=1)
    return np.where((pos[:, 0] > 0) & (neg > 0), ap, np.nan)

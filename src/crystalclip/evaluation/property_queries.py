"""Property-targeted queries: does asking for a value retrieve structures with that value?

For each value x of a fixed grid a query ("material with a band gap around 2 eV") retrieves the
top-k structures of the pool; the report gives the Spearman correlation between the asked x and
the mean property of what came back (0 for retrieval that ignores the number). The CI resamples
queries (the (x, retrieved mean) pairs), so it says how stable the trend is over the grid, not
over pools. Grids are fixed, so numbers compare across recipes and splits.
"""
from __future__ import annotations

import numpy as np

from .bootstrap import bootstrap_ci

__all__ = ["PROPERTY_QUERIES", "property_query_metrics", "spearman"]

# name -> (source, column, query template, grid of asked values); LCD = largest cavity diameter
PROPERTY_QUERIES = {
    "band_gap": ("mp40", "band_gap", "material with a band gap around {x:g} eV", np.arange(0.0, 6.01, 0.5)),
    "lcd": ("core-mof", "LCD", "metal-organic framework with a largest cavity diameter around {x:g} Å",
            np.arange(3.0, 20.01, 1.0)),
}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties); NaN when either side is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def property_query_metrics(crystal_emb: np.ndarray, query_emb: np.ndarray, asked, values, k: int = 10,
                           ci: bool = True, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Spearman(asked value, mean property of the top-k retrieved) over queries, with per-query
    detail. Structures whose property is unknown (NaN) are left out of the pool."""
    asked = np.asarray(asked, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    known = ~np.isnan(values)
    pool, vals = np.asarray(crystal_emb, dtype=np.float32)[known], values[known]
    k = min(int(k), len(vals))
    out = {"spearman": None, "chance": 0.0, "k": k, "pool_size": int(len(vals)), "n_queries": int(len(asked)),
           "pool_mean": float(vals.mean()) if len(vals) else None}
    if k == 0 or len(asked) < 2:
        if ci:
            out["ci"] = None
        return out
    scores = np.asarray(query_emb, dtype=np.float32) @ pool.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    retrieved = vals[top]
    mean, median = retrieved.mean(axis=1), np.median(retrieved, axis=1)
    rho = spearman(asked, mean)
    out["spearman"] = None if np.isnan(rho) else rho
    out["mae"] = float(np.abs(mean - asked).mean())  # beside: what always answering the pool mean gives
    out["mae_pool_mean"] = float(np.abs(vals.mean() - asked).mean())
    out["queries"] = [{"asked": float(x), "mean": float(m), "median": float(d)}
                      for x, m, d in zip(asked, mean, median)]
    if ci:
        lo, hi = bootstrap_ci(np.arange(len(asked)), n=n_boot, seed=seed, level=level,
                              stat=lambda i: spearman(asked[i.astype(int)], mean[i.astype(int)]))
        out["ci"] = None if np.isnan(lo) else [lo, hi]
    return out

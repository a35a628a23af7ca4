"""Text <-> crystal retrieval over a whole split: Recall@k, MRR, the exact random baseline.

Relevance convention ("any-relevant", DESIGN.md "Evaluation protocol"): the pairs define a sparse
relevance matrix between UNIQUE texts and structures. A text query is a hit at k when ANY of its
structures is among the top k (a publication title shared by a series of structures); a structure
query is a hit at k when ANY of its texts is among the top k. Duplicate texts are queried once
(``unique_texts`` does the de-duplication). Structures without a text are not crystal->text queries
but stay in the text->crystal candidate pool.

The rank of a query is the rank of its best-scored relevant item among the non-relevant ones:
``1 + #{non-relevant j : s_j >= max relevant score}``. Ties count against the model (pessimistic),
so degenerate embeddings (all equal) get the worst rank, never a perfect one.

The similarity matrix is never materialised: queries are scored in chunks of ``chunk_size`` rows
(``chunk_size x pool`` float32 at a time; 1,024 x 30,000 is 120 MB).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from scipy import sparse

__all__ = [
    "CONVENTION",
    "DirectionRanks",
    "unique_texts",
    "relevance_matrix",
    "first_relevant_ranks",
    "retrieval_ranks",
    "retrieval_metrics",
    "metrics_from_ranks",
    "random_hit_probability",
    "random_expected_rr",
    "random_recall_curve",
]

CONVENTION = (
    "any-relevant: unique texts are queried once; a text query hits when any structure paired with "
    "it is retrieved, a structure query hits when any of its texts is retrieved; ties ranked "
    "pessimistically; whole split as candidate pool"
)


def unique_texts(texts_per_crystal: Sequence[Sequence[str]]) -> tuple[list[str], list[set[int]]]:
    """De-duplicate texts over structures.

    Returns ``(texts, text_to_crystals)``: the unique texts in first-seen order, and for each the set
    of structure indices (positions in ``texts_per_crystal``) paired with it. Texts are compared
    exactly (after stripping outer whitespace); empty texts are dropped.
    """
    index: dict[str, int] = {}
    texts: list[str] = []
    owners: list[set[int]] = []
    for c, ts in enumerate(texts_per_crystal):
        for t in ts:
            t = str(t).strip()
            if not t:
                continue
            i = index.get(t)
            if i is None:
                i = index[t] = len(texts)
                texts.append(t)
                owners.append(set())
            owners[i].add(c)
    return texts, owners


def relevance_matrix(text_to_crystals, num_texts: int, num_crystals: int) -> sparse.csr_matrix:
    """A boolean CSR matrix (texts x crystals) from a list of index sets or any scipy sparse matrix."""
    if sparse.issparse(text_to_crystals):
        m = sparse.csr_matrix(text_to_crystals, dtype=bool)
        m.eliminate_zeros()
    else:
        if len(text_to_crystals) != num_texts:
            raise ValueError(f"text_to_crystals has {len(text_to_crystals)} rows, expected {num_texts}")
        rows, cols = [], []
        for t, cs in enumerate(text_to_crystals):
            for c in cs:
                rows.append(t)
                cols.append(int(c))
        data = np.ones(len(rows), dtype=bool)
        m = sparse.csr_matrix((data, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
                              shape=(num_texts, num_crystals), dtype=bool)
    if m.shape != (num_texts, num_crystals):
        raise ValueError(f"relevance matrix has shape {m.shape}, expected {(num_texts, num_crystals)}")
    m.sum_duplicates()
    m.sort_indices()
    return m


def first_relevant_ranks(queries: np.ndarray, candidates: np.ndarray, relevance: sparse.csr_matrix,
                         chunk_size: int = 1024) -> np.ndarray:
    """1-based rank of the best relevant candidate for every query (pessimistic ties).

    ``relevance`` is (num_queries x num_candidates) CSR. Queries without any relevant candidate
    get rank 0 (the caller excludes them). Scores are dot products, computed in float32 chunks.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    cand_t = np.ascontiguousarray(np.asarray(candidates, dtype=np.float32).T)
    n_q = q.shape[0]
    ranks = np.zeros(n_q, dtype=np.int64)
    indptr, indices = relevance.indptr, relevance.indices
    for start in range(0, n_q, chunk_size):
        stop = min(start + chunk_size, n_q)
        s = q[start:stop] @ cand_t  # (chunk, pool)
        counts = np.diff(indptr[start:stop + 1])
        has = counts > 0
        if not has.any():
            continue
        rows = np.repeat(np.arange(stop - start), counts)
        cols = indices[indptr[start]:indptr[stop]]
        rel_scores = s[rows, cols]
        seg = indptr[start:stop][has] - indptr[start]
        best = np.full(stop - start, np.inf, dtype=np.float32)
        best[has] = np.maximum.reduceat(rel_scores, seg)
        n_ge = (s >= best[:, None]).sum(axis=1)
        rel_ge = np.bincount(rows, weights=rel_scores >= best[rows], minlength=stop - start)
        r = 1 + n_ge - rel_ge.astype(np.int64)
        ranks[start:stop] = np.where(has, r, 0)
    return ranks


def random_hit_probability(n_relevant, pool_size: int, k: int) -> np.ndarray:
    """P(at least one of r relevant items in the top k of a uniformly random ranking of N):
    ``1 - C(N-r, k) / C(N, k) = 1 - prod_{i<k} (N-r-i)/(N-i)``, exact, per query."""
    r = np.asarray(n_relevant, dtype=np.int64)
    n = int(pool_size)
    out = np.ones(r.shape, dtype=np.float64)
    i = np.arange(min(int(k), n), dtype=np.float64)
    for rv in np.unique(r):
        if rv <= 0:
            out[r == rv] = 0.0
        elif n - rv >= k:  # otherwise a relevant item is always in the top k
            out[r == rv] = -np.expm1(np.sum(np.log1p(-rv / (n - i))))
    return out


def random_expected_rr(n_relevant, pool_size: int) -> np.ndarray:
    """E[1 / rank of the first relevant] for r relevant among N under a uniformly random ranking:
    ``sum_j (1/j) P(first relevant at j)`` with ``P(j) = C(N-j, r-1) / C(N, r)``, exact, per query."""
    r = np.asarray(n_relevant, dtype=np.int64)
    n = int(pool_size)
    out = np.zeros(r.shape, dtype=np.float64)
    for rv in np.unique(r):
        if rv <= 0:
            continue
        j = np.arange(1, n - rv + 2, dtype=np.float64)  # first relevant at position j
        # P(1) = r/N; P(j+1)/P(j) = (N-j-r+1)/(N-j)
        ratio = (n - j[:-1] - rv + 1) / (n - j[:-1])
        p = (rv / n) * np.concatenate([[1.0], np.cumprod(ratio)])
        out[r == rv] = float(np.sum(p / j))
    return out


def random_recall_curve(n_relevant, pool_size: int, max_k: int = 100) -> np.ndarray:
    """Expected Recall@k of a random ranking for k = 1..max_k (mean over queries)."""
    r = np.asarray(n_relevant, dtype=np.int64)
    vals, counts = np.unique(r, return_counts=True)
    curve = np.zeros(max_k)
    for rv, cnt in zip(vals, counts):
        curve += cnt * np.array([random_hit_probability(np.array([rv]), pool_size, k)[0]
                                 for k in range(1, max_k + 1)])
    return curve / max(len(r), 1)


@dataclass
class DirectionRanks:
    """Per-query results of one retrieval direction (queries without relevant items excluded)."""

    ranks: np.ndarray  # (Q,) 1-based rank of the first relevant item
    n_relevant: np.ndarray  # (Q,) number of relevant items of each query
    query_index: np.ndarray  # (Q,) index of each query in the original query matrix
    pool_size: int
    excluded: int = 0  # queries that had no relevant item
    extra: dict = field(default_factory=dict)

    def hits(self, k: int) -> np.ndarray:
        return (self.ranks <= k).astype(np.float64)

    def per_query(self, ks: Iterable[int]) -> tuple[list[str], np.ndarray]:
        """(metric names, (Q, M) matrix of per-query values): hit@k for each k, then 1/rank."""
        ks = list(ks)
        names = [f"R@{k}" for k in ks] + ["MRR"]
        cols = [self.hits(k) for k in ks] + [1.0 / self.ranks]
        return names, np.stack(cols, axis=1) if len(self.ranks) else np.zeros((0, len(names)))


def _direction(queries, candidates, rel: sparse.csr_matrix, chunk_size: int) -> DirectionRanks:
    n_rel = np.diff(rel.indptr)
    keep = np.flatnonzero(n_rel > 0)
    rel_kept = rel[keep]
    ranks = first_relevant_ranks(np.asarray(queries)[keep], candidates, rel_kept, chunk_size)
    return DirectionRanks(ranks=ranks, n_relevant=n_rel[keep], query_index=keep,
                          pool_size=int(candidates.shape[0]), excluded=int(len(n_rel) - len(keep)))


def retrieval_ranks(text_emb: np.ndarray, crystal_emb: np.ndarray, text_to_crystals,
                    chunk_size: int = 1024) -> dict[str, DirectionRanks]:
    """Per-query ranks in both directions: ``{"text_to_crystal": ..., "crystal_to_text": ...}``."""
    text_emb = np.asarray(text_emb)
    crystal_emb = np.asarray(crystal_emb)
    if text_emb.ndim != 2 or crystal_emb.ndim != 2 or text_emb.shape[1] != crystal_emb.shape[1]:
        raise ValueError(f"embedding shapes do not match: {text_emb.shape} vs {crystal_emb.shape}")
    rel = relevance_matrix(text_to_crystals, text_emb.shape[0], crystal_emb.shape[0])
    return {
        "text_to_crystal": _direction(text_emb, crystal_emb, rel, chunk_size),
        "crystal_to_text": _direction(crystal_emb, text_emb, rel.T.tocsr(), chunk_size),
    }


def metrics_from_ranks(d: DirectionRanks, ks: Sequence[int] = (1, 5, 10)) -> tuple[dict, dict]:
    """(model metrics, exact random-baseline metrics) of one direction."""
    if len(d.ranks) == 0:
        nan = {**{f"R@{k}": None for k in ks}, "MRR": None}
        return nan, dict(nan)
    model = {f"R@{k}": float(np.mean(d.ranks <= k)) for k in ks}
    model["MRR"] = float(np.mean(1.0 / d.ranks))
    rand = {f"R@{k}": float(np.mean(random_hit_probability(d.n_relevant, d.pool_size, k))) for k in ks}
    rand["MRR"] = float(np.mean(random_expected_rr(d.n_relevant, d.pool_size)))
    return model, rand


def retrieval_metrics(text_emb: np.ndarray, crystal_emb: np.ndarray, text_to_crystals,
                      ks: Sequence[int] = (1, 5, 10), *, chunk_size: int = 1024, ci: bool = False,
                      n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                      return_ranks: bool = False) -> dict:
    """Recall@k and MRR in both directions over the whole pool, with the exact random baseline.

    ``text_emb`` (T, D) holds UNIQUE texts, ``crystal_emb`` (C, D) the structures (unit rows; the
    score is the dot product), ``text_to_crystals`` a list of T index sets or a sparse (T, C)
    relevance matrix. With ``ci=True`` a bootstrap CI over queries (pool fixed) is added for every
    number under ``"ci"``. With ``return_ranks=True`` the per-query ``DirectionRanks`` are returned
    under ``"ranks"`` (for plots and custom bootstraps; not JSON-serialisable).
    """
    from crystalclip.evaluation.bootstrap import bootstrap_ci

    ks = tuple(int(k) for k in ks)
    dirs = retrieval_ranks(text_emb, crystal_emb, text_to_crystals, chunk_size)
    t2c, t2c_rand = metrics_from_ranks(dirs["text_to_crystal"], ks)
    c2t, c2t_rand = metrics_from_ranks(dirs["crystal_to_text"], ks)
    out = {
        "pool_size": int(np.asarray(crystal_emb).shape[0]),
        "num_text_queries": int(np.asarray(text_emb).shape[0]),
        "num_crystal_queries": int(len(dirs["crystal_to_text"].ranks)),
        "text_pool_size": int(np.asarray(text_emb).shape[0]),
        "text_queries_without_relevant": dirs["text_to_crystal"].excluded,
        "convention": CONVENTION,
        "text_to_crystal": t2c,
        "crystal_to_text": c2t,
        "random": t2c_rand,
        "random_crystal_to_text": c2t_rand,
    }
    if ci:
        out["ci_level"] = level
        out["n_boot"] = n_boot
        out["ci"] = {}
        for name, d in dirs.items():
            names, values = d.per_query(ks)
            if len(values) == 0:
                out["ci"][name] = {m: None for m in names}
                continue
            lo, hi = bootstrap_ci(values, n=n_boot, seed=seed, level=level)
            out["ci"][name] = {m: [float(lo[i]), float(hi[i])] for i, m in enumerate(names)}
    if return_ranks:
        out["ranks"] = dirs
    return out

"""Evaluation plots (matplotlib, Agg backend), each written atomically to a PNG path."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from crystalclip.fileio import atomic_path

__all__ = ["plot_roc_curves", "plot_recall_at_k", "plot_embedding_map", "embedding_2d"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    """Write the figure to a temporary file next to ``path``, then rename (atomic)."""
    plt = _plt()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _roc(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="mergesort")
    s, yy = scores[order], y[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]
    tp = np.cumsum(yy)[last]
    fp = np.cumsum(~yy)[last]
    return np.r_[0, fp / max(fp[-1], 1)], np.r_[0, tp / max(tp[-1], 1)]


def plot_roc_curves(scores_by_label: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], path,
                    valid: Mapping[str, np.ndarray] | None = None, title: str = "Zero-shot ROC") -> Path:
    """One ROC curve per label (labels with a single class are listed as "n/a" in the legend)."""
    from crystalclip.evaluation.zeroshot import binary_metrics, label_arrays

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="random (AUC 0.5)")
    for name, sc in scores_by_label.items():
        lab, ok = label_arrays(labels[name], None if valid is None else valid.get(name))
        sc = np.asarray(sc, dtype=np.float64)[ok]
        lab = lab[ok]
        m = binary_metrics(sc, lab, ci=False)
        if m["roc_auc"] is None:
            ax.plot([], [], label=f"{name}: n/a ({m['n_pos']}+/{m['n_neg']}-)")
            continue
        fpr, tpr = _roc(sc, lab)
        ax.plot(fpr, tpr, lw=1.5, label=f"{name}: AUC {m['roc_auc']:.3f} ({m['n_pos']}+)")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_recall_at_k(ranks, n_relevant: np.ndarray, pool_size: int, path, max_k: int = 100,
                     title: str | None = None) -> Path:
    """Recall@k for k = 1..max_k with the exact random-ranking curve.

    ``ranks``: 1-based first-relevant ranks (one curve), or ``{name: ranks}`` (several curves over
    the same queries, e.g. model and composition baseline); a ``DirectionRanks`` also works.
    ``n_relevant`` (relevant items per query) and ``pool_size`` define the random curve.
    """
    from crystalclip.evaluation.retrieval import DirectionRanks, random_recall_curve

    plt = _plt()
    if isinstance(ranks, DirectionRanks):
        ranks = {"model": ranks.ranks}
    elif not isinstance(ranks, Mapping):
        ranks = {"model": ranks}
    k = np.arange(1, max_k + 1)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for name, r in ranks.items():
        r = np.asarray(getattr(r, "ranks", r))
        curve = (np.sort(r)[None, :] <= k[:, None]).mean(axis=1) if len(r) else np.zeros(len(k))
        ax.plot(k, curve, lw=1.8, label=f"{name} (R@10 {curve[min(9, max_k - 1)]:.3f})")
    rand = random_recall_curve(n_relevant, pool_size, max_k)
    ax.plot(k, rand, ls="--", c="grey", label=f"random (R@10 {rand[min(9, max_k - 1)]:.3f})")
    ax.set(xlabel="k", ylabel="Recall@k", xscale="log", ylim=(0, 1.01),
           title=title or f"Recall@k, pool of {pool_size:,}, {len(np.asarray(n_relevant)):,} queries")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def embedding_2d(emb: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """(N, 2) coordinates: "tsne" (scikit-learn, after PCA to 50 dims), "pca", or "umap" (if installed)."""
    x = np.asarray(emb, dtype=np.float32)
    n = len(x)
    if n < 3 or method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x) if n >= 2 else np.zeros((n, 2))
    if method == "tsne":
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE

        if x.shape[1] > 50 and n > 50:
            x = PCA(n_components=50, random_state=seed).fit_transform(x)
        perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                    metric="cosine" if x.shape[1] <= 50 else "euclidean").fit_transform(x)
    if method == "umap":
        import umap  # optional

        return umap.UMAP(n_components=2, random_state=seed, metric="cosine").fit_transform(x)
    raise ValueError(f"unknown method {method!r}: use 'tsne', 'pca' or 'umap'")


def plot_embedding_map(crystal_emb: np.ndarray, colour_labels: Sequence[str], path, method: str = "tsne",
                       seed: int = 0, max_points: int = 5000, max_categories: int = 12,
                       title: str | None = None) -> Path:
    """2-D map of the embeddings coloured by a categorical label (e.g. crystal system, source).

    At most ``max_points`` structures (a seeded random subsample); categories beyond the
    ``max_categories`` most frequent are drawn grey as "other"; missing labels as "unknown".
    """
    plt = _plt()
    emb = np.asarray(crystal_emb)
    lab = np.array(["unknown" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                    for v in colour_labels], dtype=object)
    if len(lab) != len(emb):
        raise ValueError(f"{len(lab)} labels for {len(emb)} embeddings")
    idx = np.arange(len(emb))
    if len(idx) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(len(emb), max_points, replace=False))
    xy = embedding_2d(emb[idx], method=method, seed=seed)
    lab = lab[idx]
    cats, counts = np.unique(lab, return_counts=True)
    top = [c for c, _ in sorted(zip(cats, counts), key=lambda t: -t[1])][:max_categories]
    cmap = plt.get_cmap("tab20" if len(top) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(7, 6))
    rest = ~np.isin(lab, top)
    if rest.any():
        ax.scatter(xy[rest, 0], xy[rest, 1], s=4, c="lightgrey", label=f"other ({rest.sum()})", alpha=0.6)
    for i, c in enumerate(top):
        sel = lab == c
        ax.scatter(xy[sel, 0], xy[sel, 1], s=5, color=cmap(i % cmap.N), label=f"{c} ({sel.sum()})", alpha=0.8)
    ax.set(xticks=[], yticks=[], title=title or f"{method.upper()} of {len(idx):,} structure embeddings")
    ax.legend(fontsize=7, markerscale=3, loc="best", frameon=True)
    return _save(fig, path)

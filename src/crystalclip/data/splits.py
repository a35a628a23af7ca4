"""Splits that never leak: rows tied by a group (publication, material id) or by being the same
compound (reduced formula + space group) always land on the same side."""
from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")


def connected_groups(*keys: list) -> np.ndarray:
    """Component label per row, where rows sharing any non-None value of any key list are connected."""
    n = len(keys[0])
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for key in keys:
        first: dict = {}
        for i, value in enumerate(key):
            if value is None or value != value:  # None or NaN: no tie
                continue
            j = first.setdefault(value, i)
            if j != i:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(n)])


def assign_splits(
    components: np.ndarray, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> np.ndarray:
    """Whole components to train/val/test, each to the split furthest below its share of rows.

    Components too big to fit a small split (over a tenth of its target) go first, largest first;
    the rest follow in a seeded random order, so every source and size is spread evenly over the
    splits (sorting all by size would leave the singletons, e.g. all of mp40, to fill val/test).
    """
    if len(components) == 0:
        return np.array([], dtype=object)
    targets = np.asarray(fractions, float) / sum(fractions) * len(components)
    labels, sizes = np.unique(components, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(labels))
    big = sizes[order] > 0.1 * targets[targets > 0].min()
    order = np.concatenate([order[big][np.argsort(-sizes[order][big], kind="stable")], order[~big]])
    filled = np.zeros(len(SPLITS))
    split_of_component = {}
    for k in order:
        choice = int(np.argmax(targets - filled))
        split_of_component[labels[k]] = SPLITS[choice]
        filled[choice] += sizes[k]
    return np.array([split_of_component[c] for c in components], dtype=object)

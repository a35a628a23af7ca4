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
    """Whole components to train/val/test, filling each split towards its fraction of rows.

    Components go largest first (a seeded shuffle breaks ties), each to the split furthest below
    its target, so big groups cannot push a small split far over its share.
    """
    if len(components) == 0:
        return np.array([], dtype=object)
    targets = np.asarray(fractions, float) / sum(fractions) * len(components)
    labels, sizes = np.unique(components, return_counts=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    order = order[np.argsort(-sizes[order], kind="stable")]
    filled = np.zeros(len(SPLITS))
    split_of_component = {}
    for k in order:
        choice = int(np.argmax(targets - filled))
        split_of_component[labels[k]] = SPLITS[choice]
        filled[choice] += sizes[k]
    return np.array([split_of_component[c] for c in components], dtype=object)

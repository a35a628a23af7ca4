"""Multiple choice (CLaC): does a structure pick its own caption among four?

Whole-split retrieval is a hard, pool-size-dependent test; a four-way choice has a fixed chance
level (1/4) and compares across splits and recipes. Formulas are masked in every choice
(``mask_formulas``), otherwise the question is answered by reading the formula off the caption.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..text.masking import mask_formulas
from .bootstrap import bootstrap_ci

__all__ = ["choice_sets", "multiple_choice_metrics", "choice_embeddings"]


def choice_sets(texts_per_structure: Sequence[Sequence[str]], n_choices: int = 4, seed: int = 0,
                mask: bool = True) -> tuple[np.ndarray, list[list[str]]]:
    """``(positions, choices)``: for each structure that gets an item, its own caption first, then
    ``n_choices - 1`` distractors.

    The own caption is one of the structure's texts, drawn at random; distractors are distinct
    texts of other structures that differ from all of its own texts (compared after masking, so
    no choice is a second correct answer). Structures without a text, or with too few other texts
    to draw from, get no item. Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    transform = mask_formulas if mask else (lambda t: t)
    cache: dict[str, str] = {}

    def tf(t: str) -> str:
        if t not in cache:
            cache[t] = transform(str(t).strip())
        return cache[t]

    own = [list(dict.fromkeys(m for m in map(tf, ts) if m)) for ts in texts_per_structure]
    pool = list(dict.fromkeys(m for texts in own for m in texts))
    positions, choices = [], []
    for i, mine in enumerate(own):
        if not mine or len(pool) - len(mine) < n_choices - 1:
            continue
        answer = mine[int(rng.integers(len(mine)))]
        excluded, picked = set(mine), []
        while len(picked) < n_choices - 1:  # rejection sampling: own texts are few next to the pool
            candidate = pool[int(rng.integers(len(pool)))]
            if candidate not in excluded:
                excluded.add(candidate)
                picked.append(candidate)
        positions.append(i)
        choices.append([answer, *picked])
    return np.asarray(positions, dtype=np.int64), choices


def choice_embeddings(choices: list[list[str]], embed_texts: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """(items, n_choices, D) embeddings of the choices; each distinct text embedded once."""
    if not choices:
        return np.zeros((0, 0, 0), np.float32)
    unique = list(dict.fromkeys(t for c in choices for t in c))
    emb = np.asarray(embed_texts(unique))
    index = {t: i for i, t in enumerate(unique)}
    return emb[np.array([[index[t] for t in c] for c in choices])]


def multiple_choice_metrics(crystal_emb: np.ndarray, choice_emb: np.ndarray, ci: bool = True, *,
                            n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Accuracy of picking choice 0 (the own caption) by cosine score; ties count as wrong, so a
    degenerate embedding scores 0, not chance. ``crystal_emb`` (N, D), ``choice_emb`` (N, C, D)."""
    choice_emb = np.asarray(choice_emb, dtype=np.float32)
    n = len(choice_emb)
    n_choices = choice_emb.shape[1] if n else 0
    out = {"accuracy": None, "chance": 1 / n_choices if n_choices else None, "n_items": n,
           "n_choices": n_choices}
    if n == 0:
        if ci:
            out["ci"] = None
        return out
    c = np.asarray(crystal_emb, dtype=np.float32)
    c = c / np.maximum(np.linalg.norm(c, axis=-1, keepdims=True), 1e-12)
    t = choice_emb / np.maximum(np.linalg.norm(choice_emb, axis=-1, keepdims=True), 1e-12)
    scores = np.einsum("nd,ncd->nc", c, t)
    correct = (scores[:, 0] > scores[:, 1:].max(axis=1)).astype(np.float64)
    out["accuracy"] = float(correct.mean())
    if ci:
        out["ci"] = list(bootstrap_ci(correct, n=n_boot, seed=seed, level=level))
    return out

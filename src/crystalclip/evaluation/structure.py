"""What a model knows of structure, on held-out structures described from the structure alone (MP rows):
zero-shot crystal system ("a {system} crystal structure"), zero-shot structure type (the prototype
matcher's labels; the prompt is the type's name; types with >= MIN_MEMBERS test members), each top-1
beside the majority baseline; text -> crystal Recall@10 of the descriptions as written and of their
formula-free twins. 95% bootstrap CIs over the test structures (1,000 resamples)."""
from __future__ import annotations

import numpy as np

from ..structures.symmetry import CRYSTAL_SYSTEMS
from ..text.short_facts import type_name as type_prompt  # the prompt is the type's name

MIN_MEMBERS = 10
SYSTEM_PROMPT = "a {} crystal structure"


def _mean_ci(values: np.ndarray, resamples: int = 1000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(resamples)]
    return {"value": round(float(values.mean()), 4),
            "ci": [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]}


def _recall_at_10(texts_emb: np.ndarray, crystal_emb: np.ndarray) -> np.ndarray:
    top = np.argsort(-(texts_emb @ crystal_emb.T), axis=1)[:, :10]
    return np.array([i in top[i] for i in range(len(texts_emb))], float)


def structure_metrics(crystal_emb: np.ndarray, encode_texts, data, rows: np.ndarray) -> dict:
    """Metrics on the described rows among `rows`; `crystal_emb` are the embeddings of `rows`,
    `encode_texts(list) -> (n, D)` the model's text side, `data` the Dataset."""
    table = data.table
    if "texts_formula_free" not in data.columns or "structure_type" not in table:
        return {"skipped": "no rows described from the structure alone in this dataset"}
    twins = data.column("texts_formula_free", rows)
    described = np.flatnonzero((table["source"].to_numpy()[rows] == "mp")
                               & np.array([t is not None for t in twins], bool))
    if len(described) < 20:
        return {"skipped": "fewer than 20 held-out MP structures described from the structure alone"}
    z = crystal_emb[described]
    picked = rows[described]
    out = {"structures": len(described)}
    systems = [name for _, name in CRYSTAL_SYSTEMS]
    truth = np.array([systems.index(s) for s in table["crystal_system"].to_numpy()[picked]])
    guess = (z @ encode_texts([SYSTEM_PROMPT.format(s) for s in systems]).T).argmax(1)
    out["crystal_system_top1"] = _mean_ci((guess == truth).astype(float))
    out["crystal_system_majority"] = round(float(np.mean(truth == np.bincount(truth).argmax())), 4)
    types = table["structure_type"].to_numpy()[picked]
    names = {t: type_prompt(t) for t in types if isinstance(t, str)}
    counts = {}
    for t in types:
        if isinstance(t, str):
            counts[names[t]] = counts.get(names[t], 0) + 1
    kept = sorted(n for n, c in counts.items() if c >= MIN_MEMBERS)
    if len(kept) >= 2:
        mask = np.array([isinstance(t, str) and names[t] in kept for t in types])
        truth_t = np.array([kept.index(names[t]) for t in types[mask]])
        guess_t = (z[mask] @ encode_texts(kept).T).argmax(1)
        out["structure_type_top1"] = _mean_ci((guess_t == truth_t).astype(float))
        out["structure_type_majority"] = round(float(np.mean(truth_t == np.bincount(truth_t).argmax())), 4)
        out["structure_types"] = {n: counts[n] for n in kept}
    plain = [texts[0] for texts in data.column("texts", picked)]
    free = [twins[int(i)][0] for i in described]
    out["R@10_descriptions"] = _mean_ci(_recall_at_10(encode_texts(plain), z))
    out["R@10_descriptions_formula_free"] = _mean_ci(_recall_at_10(encode_texts(free), z))
    out["random_R@10"] = round(10 / len(described), 4)
    return out

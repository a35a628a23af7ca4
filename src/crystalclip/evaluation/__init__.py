"""Model-agnostic evaluation: retrieval and zero-shot metrics on embedding matrices, bootstrap CIs,
exact random baselines, keyword / property labels, plots (DESIGN.md "Evaluation protocol").

Inputs are numpy arrays with unit rows; nothing here knows about the model.

    texts, t2c = unique_texts(texts_per_crystal)
    m = retrieval_metrics(encode_texts(texts), crystal_emb, t2c, ci=True)
    labels = keyword_labels(titles)           # or: labels, valid = property_labels(table)
    z = zero_shot_metrics(crystal_emb, encode_texts([PROMPTS.get(k, k) for k in labels]), labels)
"""
from crystalclip.evaluation.bootstrap import bootstrap_ci
from crystalclip.evaluation.labels import KEYWORDS, PROMPTS, keyword_labels, property_labels
from crystalclip.evaluation.plots import plot_embedding_map, plot_recall_at_k, plot_roc_curves
from crystalclip.evaluation.retrieval import (CONVENTION, DirectionRanks, random_expected_rr,
                                              random_hit_probability, random_recall_curve,
                                              retrieval_metrics, retrieval_ranks, unique_texts)
from crystalclip.evaluation.zeroshot import binary_metrics, zero_shot_metrics, zero_shot_scores

__all__ = [
    "CONVENTION", "DirectionRanks", "KEYWORDS", "PROMPTS", "binary_metrics", "bootstrap_ci",
    "keyword_labels", "plot_embedding_map", "plot_recall_at_k", "plot_roc_curves",
    "property_labels", "random_expected_rr", "random_hit_probability", "random_recall_curve",
    "retrieval_metrics", "retrieval_ranks", "unique_texts", "zero_shot_metrics", "zero_shot_scores",
]

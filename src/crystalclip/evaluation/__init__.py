"""Model-agnostic evaluation: retrieval, zero-shot, multiple-choice, property-query and linear-probe
metrics on embedding matrices, bootstrap CIs, exact random baselines, keyword / property / CoRE MOF
labels, plots (DESIGN.md "Evaluation protocol").

Inputs are numpy arrays with unit rows; nothing here knows about the model.

    texts, t2c = unique_texts(texts_per_crystal)
    m = retrieval_metrics(encode_texts(texts), crystal_emb, t2c, ci=True)
    labels = keyword_labels(titles)           # or: labels, valid = property_labels(table)
    z = zero_shot_metrics(crystal_emb, encode_texts([PROMPTS.get(k, k) for k in labels]), labels)
    items, choices = choice_sets(texts_per_crystal)   # multiple choice among 4, formulas masked
    mc = multiple_choice_metrics(crystal_emb[items], choice_embeddings(choices, encode_texts))
"""
from crystalclip.evaluation.bootstrap import bootstrap_ci
from crystalclip.evaluation.choice import choice_embeddings, choice_sets, multiple_choice_metrics
from crystalclip.evaluation.labels import KEYWORDS, PROMPTS, keyword_labels, mof_labels, property_labels
from crystalclip.evaluation.plots import plot_embedding_map, plot_recall_at_k, plot_roc_curves
from crystalclip.evaluation.probe import logistic_probe, ridge_probe
from crystalclip.evaluation.property_queries import PROPERTY_QUERIES, property_query_metrics
from crystalclip.evaluation.retrieval import (CONVENTION, DirectionRanks, random_expected_rr,
                                              random_hit_probability, random_recall_curve,
                                              retrieval_metrics, retrieval_ranks, unique_texts)
from crystalclip.evaluation.zeroshot import binary_metrics, zero_shot_metrics, zero_shot_scores

__all__ = [
    "CONVENTION", "DirectionRanks", "KEYWORDS", "PROMPTS", "PROPERTY_QUERIES", "binary_metrics",
    "bootstrap_ci", "choice_embeddings", "choice_sets", "keyword_labels", "logistic_probe", "mof_labels",
    "multiple_choice_metrics", "plot_embedding_map", "plot_recall_at_k", "plot_roc_curves",
    "property_labels", "property_query_metrics", "random_expected_rr", "random_hit_probability",
    "random_recall_curve", "retrieval_metrics", "retrieval_ranks", "ridge_probe", "unique_texts",
    "zero_shot_metrics", "zero_shot_scores",
]

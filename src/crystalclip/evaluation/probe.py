"""Linear probes on frozen crystal embeddings: how much of a property a linear map can read off.

Retrieval and zero-shot need the text side; a probe asks only whether the crystal embedding
carries the property. Fit on the train split, score on the evaluated split; the regularisation is
chosen by cross-validation on the train rows only. Features are standardised with train
statistics so one grid of strengths suits every embedder (unit rows of 128 or 384 dimensions).
CIs resample test rows.
"""
from __future__ import annotations

import numpy as np

from .bootstrap import bootstrap_ci
from .zeroshot import binary_metrics, label_arrays

__all__ = ["ridge_probe", "logistic_probe", "ALPHAS", "CS"]

ALPHAS = np.logspace(-2, 5, 15)  # ridge strengths (on standardised features)
CS = np.logspace(-4, 2, 7)  # inverse logistic strengths


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def _r2_mae(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    ss = np.sum((y - y.mean()) ** 2)
    r2 = 1 - np.sum((y - pred) ** 2) / ss if ss > 0 else float("nan")
    return float(r2), float(np.abs(y - pred).mean())


def ridge_probe(x_train, y_train, x_test, y_test, ci: bool = True, *, alphas=ALPHAS, n_boot: int = 1000,
                seed: int = 0, level: float = 0.95) -> dict:
    """Ridge regression (strength by leave-one-out CV on train) -> test R² and MAE.

    ``baseline`` is the same numbers for predicting the train mean (R² about 0: the chance level).
    Rows with a NaN target are dropped.
    """
    from sklearn.linear_model import RidgeCV

    x_train, y_train = _known(x_train, y_train)
    x_test, y_test = _known(x_test, y_test)
    out = {"r2": None, "mae": None, "n_train": len(y_train), "n_test": len(y_test)}
    if len(y_train) < 3 or len(y_test) < 2:
        return out
    a, b = _standardise(x_train, x_test)
    fit = RidgeCV(alphas=alphas).fit(a, y_train)
    pred = fit.predict(b)
    out["r2"], out["mae"] = _r2_mae(y_test, pred)
    out["alpha"] = float(fit.alpha_)
    r2, mae = _r2_mae(y_test, np.full_like(y_test, y_train.mean()))
    out["baseline"] = {"r2": r2, "mae": mae}
    if ci:
        lo, hi = bootstrap_ci(np.c_[y_test, pred], stat=lambda v: _r2_mae(v[:, 0], v[:, 1]), n=n_boot,
                              seed=seed, level=level)
        out["ci"] = {"r2": [float(lo[0]), float(hi[0])], "mae": [float(lo[1]), float(hi[1])]}
    return out


def logistic_probe(x_train, y_train, x_test, y_test, ci: bool = True, *, cs=CS, folds: int = 5,
                   n_boot: int = 1000, seed: int = 0, level: float = 0.95, valid_train=None,
                   valid_test=None) -> dict:
    """L2 logistic regression (C by stratified k-fold CV on train, by ROC-AUC) -> test
    ROC-AUC and AP with counts and CIs (as zero-shot labels); chance ROC-AUC is 0.5. Labels may be
    bool, float with NaN for missing, or come with ``valid_*`` masks."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    y_tr, ok_tr = label_arrays(y_train, valid_train)
    y_te, ok_te = label_arrays(y_test, valid_test)
    x_tr, y_tr = np.asarray(x_train, dtype=np.float64)[ok_tr], y_tr[ok_tr]
    x_te, y_te = np.asarray(x_test, dtype=np.float64)[ok_te], y_te[ok_te]
    n_minority = int(min(y_tr.sum(), len(y_tr) - y_tr.sum()))
    if n_minority < 2 or len(y_te) == 0:
        return {"roc_auc": None, "ap": None, "n_train": int(len(y_tr)), "n_test": int(len(y_te)), "chance": 0.5}
    a, b = _standardise(x_tr, x_te)
    splits = list(StratifiedKFold(min(folds, n_minority), shuffle=True, random_state=seed).split(a, y_tr))

    def cv_auc(c: float) -> float:
        return np.mean([roc_auc_score(y_tr[v], LogisticRegression(C=c, max_iter=5000).fit(a[t], y_tr[t])
                                      .decision_function(a[v])) for t, v in splits])

    best = float(max(cs, key=cv_auc))  # the first of equals: the strongest regularisation
    fit = LogisticRegression(C=best, max_iter=5000).fit(a, y_tr)
    out = binary_metrics(fit.decision_function(b), y_te, ci=ci, n_boot=n_boot, seed=seed, level=level)
    out.update({"C": best, "n_train": int(len(y_tr)), "n_test": int(len(y_te)), "chance": 0.5})
    return out


def _known(x, y) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    ok = ~np.isnan(y)
    return np.asarray(x, dtype=np.float64)[ok], y[ok]

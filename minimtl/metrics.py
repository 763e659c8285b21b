"""Metrics over a whole data set: ROC AUC (per label and macro), and ``task_metrics``, the
metrics of one head kind (defined with the kind in ``minimtl.objectives``)."""

from __future__ import annotations

import numpy as np

__all__ = ["roc_auc", "macro_auc", "task_metrics"]


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random positive > a random negative), ties
    counting one half (the Mann–Whitney statistic, from average ranks). NaN when the labels
    are all one class."""
    positive = positive.astype(bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size)
    sorted_scores = scores[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], scores.size]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = 0.5 * (s + e - 1) + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mean ROC AUC over the columns of scores (N, K) with labels positive (N, K), leaving
    out columns whose labels are all one class (their AUC is NaN); NaN if every one is."""
    aucs = [roc_auc(scores[:, k], positive[:, k]) for k in range(scores.shape[1])]
    return float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else float("nan")


def task_metrics(kind: str, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Metrics of one head from its outputs (probabilities, or values for 'linear').

    softmax: accuracy (argmax), macro one-vs-rest AUC; sigmoid: binary accuracy at 0.5 over
    all labels, macro AUC over labels; linear: RMSE and MAE. A softmax head's target is
    class labels (N,) or probability rows (N, K), whose argmax is then the class (Keras's
    categorical accuracy).
    """
    from .objectives import objective

    return objective(kind).metrics(output, target)

"""Evaluation metrics computed with numpy, and which direction is better for each.

Predictions come from the model's pyfunc ``predict``: for binary classification the
probability of the positive class, for regression the predicted value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    fn: Callable[[Any, Any, float], float]


def _np():
    import numpy as np

    return np


def roc_auc(y, p, _threshold) -> float:
    np = _np()
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0 or np.isnan(p).any():
        return math.nan
    # Mann-Whitney U with average ranks for ties
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p), dtype=float)
    sorted_p = p[order]
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(y, p, _threshold) -> float:
    np = _np()
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def accuracy(y, p, threshold) -> float:
    np = _np()
    p = np.asarray(p, dtype=float)
    if np.isnan(p).any():
        return math.nan
    return float(np.mean((p >= threshold) == (np.asarray(y) == 1)))


def f1(y, p, threshold) -> float:
    np = _np()
    p = np.asarray(p, dtype=float)
    if np.isnan(p).any():
        return math.nan
    pred = p >= threshold
    truth = np.asarray(y) == 1
    tp = float(np.sum(pred & truth))
    fp = float(np.sum(pred & ~truth))
    fn = float(np.sum(~pred & truth))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def brier(y, p, _threshold) -> float:
    np = _np()
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def rmse(y, p, _threshold) -> float:
    np = _np()
    return float(np.sqrt(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2)))


def mae(y, p, _threshold) -> float:
    np = _np()
    return float(np.mean(np.abs(np.asarray(p, dtype=float) - np.asarray(y, dtype=float))))


def r2(y, p, _threshold) -> float:
    np = _np()
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return math.nan if ss_tot == 0 else 1.0 - float(np.sum((y - p) ** 2)) / ss_tot


METRICS: dict[str, dict[str, Metric]] = {
    "binary_classification": {
        m.name: m
        for m in (
            Metric("roc_auc", True, roc_auc),
            Metric("log_loss", False, log_loss),
            Metric("accuracy", True, accuracy),
            Metric("f1", True, f1),
            Metric("brier", False, brier),
        )
    },
    "regression": {
        m.name: m
        for m in (Metric("rmse", False, rmse), Metric("mae", False, mae), Metric("r2", True, r2))
    },
}


def row_scores(arr):
    """One score per row from a model's output array, as the evaluation scores it: a 2-D output's
    last column (P(class 1) of a two-column probability output) or its only one."""
    if arr.ndim == 2:
        arr = arr[:, -1] if arr.shape[1] > 1 else arr[:, 0]
    return arr


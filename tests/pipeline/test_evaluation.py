"""Metrics against scikit-learn, and the gate rules: NaN never passes, no champion is explicit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from mlops_ci.config.schema import EvaluationConfig
from mlops_ci.metrics import METRICS
from mlops_ci.records import MetricComparison
from mlops_ci.stages.evaluate import apply_gates, compute_metrics

NAN = float("nan")


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=500) < 0.4).astype(float)
    p = np.clip(0.4 * y + rng.uniform(size=500) * 0.6, 0, 1).round(2)  # ties included
    m = METRICS["binary_classification"]
    assert m["roc_auc"].fn(y, p, 0.5) == pytest.approx(sk.roc_auc_score(y, p))
    assert m["log_loss"].fn(y, p, 0.5) == pytest.approx(sk.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)))
    assert m["accuracy"].fn(y, p, 0.5) == pytest.approx(sk.accuracy_score(y, p >= 0.5))
    assert m["f1"].fn(y, p, 0.5) == pytest.approx(sk.f1_score(y, p >= 0.5))
    assert m["brier"].fn(y, p, 0.5) == pytest.approx(sk.brier_score_loss(y, p))


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    p = y + rng.normal(scale=0.3, size=200)
    m = METRICS["regression"]
    assert m["rmse"].fn(y, p, 0) == pytest.approx(math.sqrt(sk.mean_squared_error(y, p)))
    assert m["mae"].fn(y, p, 0) == pytest.approx(sk.mean_absolute_error(y, p))
    assert m["r2"].fn(y, p, 0) == pytest.approx(sk.r2_score(y, p))


def test_nan_predictions_give_nan_metrics():
    ev = EvaluationConfig(metrics=["roc_auc", "accuracy", "f1"])
    out = compute_metrics(ev, np.array([0, 1, 0, 1.0]), np.array([0.1, NAN, 0.3, 0.9]))
    assert all(math.isnan(v) for v in out.values())


def comparisons(candidate: dict, champion: dict | None = None):
    table = METRICS["binary_classification"]
    return [MetricComparison(name=k, higher_is_better=table[k].higher_is_better, candidate=v,
                             champion=(champion or {}).get(k)) for k, v in candidate.items()]


def gates(cfg: dict, candidate: dict, champion: dict | None = None, present=True):
    ev = EvaluationConfig.model_validate(cfg)
    return apply_gates(ev, comparisons(candidate, champion), champion_present=present, champion_label="alias x@staging")


def statuses(results):
    return [(g.metric, g.kind, g.status) for g in results]


def test_absolute_gates():
    cfg = {"gates": {"roc_auc": {"min": 0.7}, "log_loss": {"max": 0.5}}}
    assert statuses(gates(cfg, {"roc_auc": 0.8, "log_loss": 0.4}, {"roc_auc": 0.8, "log_loss": 0.4})) == [
        ("roc_auc", "min", "pass"), ("log_loss", "max", "pass")]
    assert statuses(gates(cfg, {"roc_auc": 0.69, "log_loss": 0.51}, {"roc_auc": 0.8, "log_loss": 0.4})) == [
        ("roc_auc", "min", "fail"), ("log_loss", "max", "fail")]


def test_regression_gate_respects_metric_direction():
    cfg = {"gates": {"roc_auc": {"max_regression": 0.01}, "log_loss": {"max_regression": 0.01}}}
    better = gates(cfg, {"roc_auc": 0.85, "log_loss": 0.40}, {"roc_auc": 0.80, "log_loss": 0.45})
    assert [g.status for g in better] == ["pass", "pass"]
    slightly = gates(cfg, {"roc_auc": 0.795, "log_loss": 0.455}, {"roc_auc": 0.80, "log_loss": 0.45})
    assert [g.status for g in slightly] == ["pass", "pass"]
    worse = gates(cfg, {"roc_auc": 0.78, "log_loss": 0.47}, {"roc_auc": 0.80, "log_loss": 0.45})
    assert [g.status for g in worse] == ["fail", "fail"]
    assert "worse by 0.0200" in worse[0].message


def test_nan_never_passes():
    cfg = {"gates": {"roc_auc": {"min": 0.0, "max_regression": 1.0}}}
    results = gates(cfg, {"roc_auc": NAN}, {"roc_auc": 0.8})
    assert statuses(results) == [("roc_auc", "finite", "fail"), ("roc_auc", "min", "fail"),
                                 ("roc_auc", "max_regression", "fail")]
    # an ungated NaN metric fails too
    assert ("log_loss", "finite", "fail") in statuses(gates({}, {"roc_auc": 0.8, "log_loss": NAN}))
    # a NaN champion metric cannot be compared: fail, not pass
    assert statuses(gates({"gates": {"roc_auc": {"max_regression": 0.1}}}, {"roc_auc": 0.8}, {"roc_auc": NAN})) == [
        ("roc_auc", "max_regression", "fail")]


def test_no_champion_is_an_explicit_state():
    cfg = {"gates": {"roc_auc": {"min": 0.7, "max_regression": 0.01}}}
    results = gates(cfg, {"roc_auc": 0.8}, present=False)
    assert statuses(results) == [("*", "champion", "pass"), ("roc_auc", "min", "pass"),
                                 ("roc_auc", "max_regression", "skipped")]
    assert "no champion (alias x@staging); evaluation.no_champion=pass" in results[0].message
    strict = gates({**cfg, "no_champion": "fail"}, {"roc_auc": 0.8}, present=False)
    assert statuses(strict)[0] == ("*", "champion", "fail")

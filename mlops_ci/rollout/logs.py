"""A rollout step judged from KServe's inference logs: the canary's answers against the primary's.

KServe's agent records which predictor answered each request (the pod label ``endpoint`` becomes
the agent's ``--endpoint``, then each record's ``endpoint`` and the CloudEvent's ``ce-endpoint``);
mlops-ci labels the canary's pods ``endpoint: canary`` and the primary's ``endpoint: default``, so
:func:`mlops_ci.monitor.traffic.pair` splits a step's traffic in two (a record without an endpoint
is the primary's). Both sides answer the same stream of requests over the same window, so the
primary's own answers are the baseline: a difference in the distribution of predictions is the
model's doing, not the traffic's (the reference of eval predictions would mix the two).

- ``prediction``: the canary's predictions against the primary's, as the checks measure drift
  (the profiler's bins from the primary's quantiles, PSI and Jensen–Shannon from
  :mod:`mlops_ci.checks.drift`), failed at the fail levels (by default the checks' own:
  PSI 0.25, JS 0.2; :meth:`LogThresholds.from_drift` takes a config's ``drift`` section instead);
- the live metric (accuracy by default), where ground truth is joined to the requests
  (:mod:`mlops_ci.monitor.labels`): the canary's against the primary's, failed when it trails by
  more than ``max_drop``.

Too little traffic on either side is ``inconclusive`` (never a pass), its message naming both counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from mlops_ci.errors import UsageError
from mlops_ci.metrics import METRICS
from mlops_ci.monitor.labels import LABEL
from mlops_ci.monitor.traffic import CANARY, ENDPOINT, ID, PREDICTION, TIME, Traffic
from mlops_ci.rollout.verdict import FAIL, INCONCLUSIVE, PASS, Finding, Window

if TYPE_CHECKING:
    from mlops_ci.config.checks import DriftChecks

SOURCE = "logs"


@dataclass(frozen=True)
class LogThresholds:
    """Where a step fails: the drift fail levels (None turns one off) and the metric's allowed drop."""

    psi: float | None = 0.5  # as config.analysis.LogsAnalysis: a retrain moves predictions 0.2-0.3
    js: float | None = 0.3
    bins: int = 10
    metric: str = "accuracy"
    task: str = "binary_classification"
    max_drop: float = 0.02  # in the metric's units, in its worse direction
    decision_threshold: float = 0.5  # a score at or above it is the positive class (accuracy, f1)

    def __post_init__(self) -> None:
        if self.task not in METRICS or self.metric not in METRICS[self.task]:
            known = ", ".join(METRICS.get(self.task, {})) or ", ".join(METRICS)
            raise UsageError(f"metric {self.metric!r} is not one of {self.task}'s ({known})")

    @classmethod
    def from_drift(cls, drift: DriftChecks, **others) -> LogThresholds:
        """The fail levels and bins of a ``drift`` section (checks or monitoring), the rest as given."""
        return cls(psi=drift.psi.fail, js=drift.js.fail, bins=drift.bins, **others)


@dataclass(frozen=True)
class Side:
    """One endpoint's rows in the window: its name, rows with a prediction, requests among them."""

    name: str
    rows: pd.DataFrame

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def requests(self) -> int:
        return int(self.rows[ID].nunique()) if len(self.rows) else 0


def split(frame: pd.DataFrame, window: Window, canary_endpoint: str = CANARY) -> tuple[Side, Side]:
    """The answered rows of ``window`` ([start, end)), the primary's and the canary's. Every endpoint
    other than the canary's counts as the primary's, and so does a frame logged without endpoints."""
    if not len(frame):
        empty = pd.DataFrame(columns=[PREDICTION, ID, TIME])
        return Side("primary", empty), Side("canary", empty)
    rows = frame[(frame[TIME] >= window.start) & (frame[TIME] < window.end) & frame[PREDICTION].notna()]
    canary = (rows[ENDPOINT] == canary_endpoint) if ENDPOINT in rows else pd.Series(False, index=rows.index)
    return Side("primary", rows[~canary]), Side("canary", rows[canary])


def _few(lead: str, primary: Side, canary: Side, min_rows: int, unit: str) -> str | None:
    """Why a measure cannot be judged yet (a side under ``min_rows``), both counts named; or None."""
    if canary.count >= min_rows and primary.count >= min_rows:
        return None
    return (f"{lead}: the canary {canary.count:,} {unit} ({canary.requests:,} requests), the primary "
            f"{primary.count:,} ({primary.requests:,}); at least {min_rows:,} each")


def prediction_finding(primary: Side, canary: Side, *, min_rows: int, thresholds: LogThresholds) -> Finding:
    """The canary's prediction distribution against the primary's (PSI, JS on the primary's bins)."""
    import pyarrow as pa

    from mlops_ci.checks import drift
    from mlops_ci.checks.compare import score
    from mlops_ci.checks.profiler import ProfileOptions, profile_table

    few = _few("too little traffic to compare predictions", primary, canary, min_rows, "rows")
    if few:
        return Finding(SOURCE, "prediction", INCONCLUSIVE, few)
    options = ProfileOptions(bins=thresholds.bins)

    def table(side: Side) -> pa.Table:
        return pa.table({PREDICTION: side.rows[PREDICTION].to_numpy(dtype=float)})

    edges = profile_table(table(primary), options=options)  # the primary's quantile edges
    base = profile_table(table(primary), options=options, reference=edges)  # its exact counts on them
    head = profile_table(table(canary), options=options, reference=base)
    b, h, _ = drift.aligned_counts(base.columns[PREDICTION], head.columns[PREDICTION])
    measured = [("PSI", drift.psi(b, h), thresholds.psi), ("JS", drift.js_distance(b, h), thresholds.js)]
    graded = [(m, v, t) for m, v, t in measured if t is not None]
    failed = [(m, v, t) for m, v, t in graded if not v < t]  # NaN never passes
    shown = ", ".join(f"{m} {score(v, (t,))} {'<' if v < t else '≥'} {t:g}" if t is not None else
                      f"{m} {score(v, ())}" for m, v, t in measured)
    # the Finding's value (canary=): the distance nearest its fail level, or furthest past it
    _, value, level = max(graded or measured, key=lambda g: g[1] / g[2] if g[2] else g[1])
    message = (f"predictions of the canary ({canary.requests:,} requests) against the primary's "
               f"({primary.requests:,}): {shown}")
    return Finding(SOURCE, "prediction", FAIL if failed else PASS, message, canary=value, threshold=level)


def _labelled(side: Side) -> Side:
    rows = side.rows
    return Side(side.name, rows[rows[LABEL].notna()] if LABEL in rows else rows.iloc[0:0])


def _metric(side: Side, thresholds: LogThresholds) -> float:
    import numpy as np

    y = side.rows[LABEL]
    if thresholds.task == "binary_classification":  # 1, True, 1.0 are the positive class, as the evaluation reads them
        y = y.astype(str).isin(["1", "True", "1.0"]).astype(int)
    fn = METRICS[thresholds.task][thresholds.metric].fn
    return float(fn(np.asarray(y, dtype=float), side.rows[PREDICTION].to_numpy(dtype=float),
                    thresholds.decision_threshold))


def metric_finding(primary: Side, canary: Side, *, min_rows: int, thresholds: LogThresholds) -> Finding | None:
    """The canary's live metric against the primary's over their labelled rows; None when no label
    arrived for the window on either side (labels not configured, or not in yet)."""
    name = thresholds.metric
    primary, canary = _labelled(primary), _labelled(canary)
    if not primary.count and not canary.count:
        return None
    few = _few(f"too few labels yet to compare {name}", primary, canary, min_rows, "labelled rows")
    if few:
        return Finding(SOURCE, name, INCONCLUSIVE, few)
    ours, theirs = _metric(canary, thresholds), _metric(primary, thresholds)
    head = (f"{name} of the canary {ours:.4f} ({canary.count:,} labelled rows) against the primary's "
            f"{theirs:.4f} ({primary.count:,})")
    if math.isnan(ours) or math.isnan(theirs):
        return Finding(SOURCE, name, INCONCLUSIVE, f"{head}: NaN cannot be compared", canary=ours, primary=theirs)
    better = METRICS[thresholds.task][name].higher_is_better
    drop = (theirs - ours) if better else (ours - theirs)
    status = FAIL if drop > thresholds.max_drop else PASS
    verdict = (f"{drop:.4f} worse, over the {thresholds.max_drop:g} allowed" if status == FAIL
               else f"within the {thresholds.max_drop:g} allowed" if drop > 0 else "no worse")
    return Finding(SOURCE, name, status, f"{head}: {verdict}", canary=ours, primary=theirs,
                   threshold=thresholds.max_drop)


def analyse_logs(frame_or_traffic: pd.DataFrame | Traffic, *, window: Window, canary_endpoint: str = CANARY,
                 min_rows: int, thresholds: LogThresholds | None = None) -> list[Finding]:
    """The findings of one step from its logged traffic (:func:`~mlops_ci.monitor.traffic.pair`'s,
    labels joined or not): ``prediction`` always, the metric where labels arrived. A side with fewer
    than ``min_rows`` answered (or labelled) rows in ``window`` makes its finding inconclusive."""
    th = thresholds or LogThresholds()
    frame = frame_or_traffic.frame if isinstance(frame_or_traffic, Traffic) else frame_or_traffic
    primary, canary = split(frame, window, canary_endpoint)
    findings = [prediction_finding(primary, canary, min_rows=min_rows, thresholds=th)]
    metric = metric_finding(primary, canary, min_rows=min_rows, thresholds=th)
    return findings if metric is None else [*findings, metric]


__all__ = ["LogThresholds", "Side", "analyse_logs", "metric_finding", "prediction_finding", "split"]

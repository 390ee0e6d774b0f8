"""Served traffic against a version's reference, window by window.

Each window's rows (:mod:`.traffic`) are profiled with the same streaming profiler as the pull
request's checks, on the reference's bin edges, and compared with the same effect sizes
(``mlops_ci.checks.compare``): the features against the training data's profile, the
predictions against the predictions on the eval set. Traffic volume is not a drift (the row
count check is off) and the label is not in traffic. A window with fewer rows than ``min_rows``
is ``insufficient data``, never ``pass``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from mlops_ci.checks.profile import TableProfile
from mlops_ci.config.monitoring import MonitoringConfig
from mlops_ci.monitor.labels import LABEL
from mlops_ci.monitor.traffic import ENDPOINT, ID, PREDICTION, TIME
from mlops_ci.records import Finding
from mlops_ci.records.monitor import INSUFFICIENT, WindowResult, worst_window


def split(frame: pd.DataFrame, *, until: datetime, width: timedelta, count: int) -> list[tuple[datetime, datetime,
                                                                                              pd.DataFrame]]:
    """``count`` windows of ``width`` ending at ``until``, oldest first, with their rows."""
    out = []
    for i in range(count, 0, -1):
        start, end = until - i * width, until - (i - 1) * width
        rows = frame[(frame[TIME] >= start) & (frame[TIME] < end)] if len(frame) else frame
        out.append((start, end, rows))
    return out


def out_of_range(train: TableProfile, features: pd.DataFrame, settings: MonitoringConfig) -> list[Finding]:
    """A finding per numeric feature with values outside the training data's [min, max], graded on
    their share of the column's values."""
    th = settings.out_of_range
    findings = []
    for name, col in train.columns.items():
        if col.kind != "numeric" or name not in features or not isinstance(col.minimum, (int, float)):
            continue
        values = pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if not len(values):
            continue
        outside = int(((values < col.minimum) | (values > col.maximum)).sum())
        found = range_finding(name, col, outside, len(values), th)
        if found is not None:
            findings.append(found)
    return findings


def range_finding(name: str, col, outside: int, values: int, th) -> Finding | None:
    """``outside`` of a numeric column's ``values`` fell outside the training range: graded on their share."""
    share = outside / values
    status = ("fail" if th.fail is not None and share >= th.fail and outside
              else "warn" if th.warn is not None and share >= th.warn and outside else "pass")
    if status == "pass":
        return None
    return Finding(check="range", dataset="traffic", column=name, metric="out_of_range", value=share,
                   threshold=th.fail if status == "fail" else th.warn, status=status,
                   message=f"{outside} of {values} values ({share:.1%}) outside the training range "
                   f"[{col.minimum:g}, {col.maximum:g}]")


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def grade(start: str, end: str, rows: int, requests: int, *, train: TableProfile, predicted: TableProfile,
          head: TableProfile, scores: TableProfile | None, range_found: list[Finding], policy) -> WindowResult:
    """A window's result from its profiles (the feature profile on the training data's bins, the
    prediction profile on the eval predictions'): the checks' comparison, the range findings."""
    from mlops_ci.checks.compare import compare_profiles

    columns, findings = compare_profiles("traffic", train, head, policy, label="")
    findings += range_found
    if scores is not None and scores.rows:
        more_columns, more = compare_profiles("predictions", predicted, scores, policy, label="")
        columns += more_columns
        findings += more
    graded = [s for s in [*(c.status for c in columns), *(f.status for f in findings)] if s != "skipped"]
    return WindowResult(start=start, end=end, rows=rows, requests=requests,
                        status=worst_window(graded) if graded else "pass", columns=columns, findings=findings)


def reference_profiles(reference: dict) -> tuple[TableProfile, TableProfile]:
    """The training data's and the eval predictions' profiles of a reference document."""
    return (TableProfile.from_json(reference["profiles"]["train"]),
            TableProfile.from_json(reference["profiles"]["predictions"]))


def analyse(reference: dict, start: datetime, end: datetime, rows: pd.DataFrame, settings: MonitoringConfig, *,
            min_rows: int | None = None) -> WindowResult:
    """One window of traffic against the reference document (mlops_ci.stages.reference)."""
    import pyarrow as pa

    from mlops_ci.checks.profiler import ProfileOptions, profile_table

    requests = int(rows[ID].nunique()) if len(rows) else 0
    if len(rows) < (settings.min_rows if min_rows is None else min_rows):
        return WindowResult(start=_iso(start), end=_iso(end), rows=len(rows), requests=requests, status=INSUFFICIENT)
    options = ProfileOptions(**reference["options"])
    policy = settings.as_checks(reference.get("label") or "")
    train, predicted = reference_profiles(reference)
    features = rows.drop(columns=[ID, TIME, PREDICTION, *(c for c in (*policy.ignore_columns, LABEL, ENDPOINT)
                                                           if c in rows)])
    head = profile_table(pa.Table.from_pandas(features, preserve_index=False), options=options, reference=train)
    scores = rows[[PREDICTION]].dropna()
    out = profile_table(pa.Table.from_pandas(scores, preserve_index=False), options=options,
                        reference=predicted) if len(scores) else None
    return grade(_iso(start), _iso(end), len(rows), requests, train=train, predicted=predicted, head=head,
                 scores=out, range_found=out_of_range(train, features, settings), policy=policy)


__all__ = ["INSUFFICIENT", "analyse", "grade", "out_of_range", "range_finding", "reference_profiles", "split"]

"""Served traffic against a version's reference, window by window.

Each window's rows (:mod:`.traffic`) are profiled with the same streaming profiler as the pull
request's checks, on the reference's bin edges, and compared with the same effect sizes
(``mlops_ci.checks.compare``): the features against the training data's profile, the
predictions against the predictions on the eval set. Traffic volume is not a drift (the row
count check is off) and the label is not in traffic. A window with fewer rows than ``min_rows``
is ``insufficient data``, never ``pass``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from mlops_ci.checks.profile import TableProfile
from mlops_ci.config.schema import ChecksConfig, RowChecks, Threshold
from mlops_ci.monitor.traffic import ID, PREDICTION, TIME
from mlops_ci.records import ColumnSummary, Finding, worst

INSUFFICIENT = "insufficient data"


@dataclass
class Window:
    start: datetime
    end: datetime
    rows: int
    requests: int
    status: str  # pass | warn | fail | insufficient data
    columns: list[ColumnSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def split(frame: pd.DataFrame, *, until: datetime, width: timedelta, count: int) -> list[tuple[datetime, datetime,
                                                                                              pd.DataFrame]]:
    """``count`` windows of ``width`` ending at ``until``, oldest first, with their rows."""
    out = []
    for i in range(count, 0, -1):
        start, end = until - i * width, until - (i - 1) * width
        rows = frame[(frame[TIME] >= start) & (frame[TIME] < end)] if len(frame) else frame
        out.append((start, end, rows))
    return out


def _policy(checks: ChecksConfig, label: str) -> ChecksConfig:
    """The checks' thresholds for traffic: no row count change, the label left out."""
    return checks.model_copy(update={"rows": RowChecks(max_change=Threshold()),
                                     "ignore_columns": [*checks.ignore_columns, label]})


def analyse(reference: dict, start: datetime, end: datetime, rows: pd.DataFrame, checks: ChecksConfig, *,
            min_rows: int) -> Window:
    """One window of traffic against the reference document (mlops_ci.stages.reference)."""
    import pyarrow as pa

    from mlops_ci.checks.compare import compare_profiles
    from mlops_ci.checks.profiler import ProfileOptions, profile_table

    requests = int(rows[ID].nunique()) if len(rows) else 0
    if len(rows) < min_rows:
        return Window(start, end, len(rows), requests, INSUFFICIENT)
    options = ProfileOptions(**reference["options"])
    policy = _policy(checks, reference.get("label") or "")
    train = TableProfile.from_json(reference["profiles"]["train"])
    predicted = TableProfile.from_json(reference["profiles"]["predictions"])
    features = rows.drop(columns=[ID, TIME, PREDICTION])
    head = profile_table(pa.Table.from_pandas(features, preserve_index=False), options=options, reference=train)
    columns, findings = compare_profiles("traffic", train, head, policy, label="")
    scores = rows[[PREDICTION]].dropna()
    if len(scores):
        out = profile_table(pa.Table.from_pandas(scores, preserve_index=False), options=options, reference=predicted)
        more_columns, more = compare_profiles("predictions", predicted, out, policy, label="")
        columns += more_columns
        findings += more
    status = worst([c.status for c in columns] + [f.status for f in findings]) if columns or findings else "pass"
    return Window(start, end, len(rows), requests, "pass" if status == "skipped" else status, columns, findings)


__all__ = ["INSUFFICIENT", "Window", "analyse", "split"]

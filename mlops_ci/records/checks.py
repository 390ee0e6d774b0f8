"""The data checks' results: findings, column summaries (in natural units too), datasets."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_serializer

from mlops_ci.checks.suites.models import SuiteResult
from mlops_ci.checks.units import MAX_SHARES, Histogram, NumericSummary, ShareChange
from mlops_ci.records.base import Record, Status, _float_out

class Finding(Record):
    check: Literal["data", "rows", "schema", "types", "nulls", "drift", "label_drift", "suite"]
    dataset: str
    column: str | None = None
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    status: Status
    message: str

    _ser = field_serializer("value", "threshold")(lambda self, v: _float_out(v))


class ColumnSummary(Record):
    column: str
    kind: str
    base_type: str | None = None
    head_type: str | None = None
    base_null_rate: float | None = None
    head_null_rate: float | None = None
    psi: float | None = None
    js: float | None = None
    wasserstein: float | None = None  # over the base's standard deviation
    status: Status = "pass"
    # drift in natural units (mlops_ci.checks.units), for flagged columns and the label's classes
    label: bool = False
    base_stats: NumericSummary | None = None  # numeric: mean, median, p5, p95
    head_stats: NumericSummary | None = None
    shares: list[ShareChange] = Field(default=[], max_length=MAX_SHARES)  # moved most, or the label's classes
    histogram: Histogram | None = None  # base vs head over the same bins, for a chart


class DatasetCheck(Record):
    role: str
    path: str
    base_md5: str | None = None
    head_md5: str | None = None
    base_rows: int | None = None
    head_rows: int | None = None
    cached: list[str] = []  # sides whose profile came from the cache ("base", "head")
    columns: list[ColumnSummary] = []


class ChecksRecord(Record):
    status: Status
    skip_reason: str | None = None
    base_sha: str | None = None
    head_sha: str | None = None
    datasets: list[DatasetCheck] = []
    findings: list[Finding] = []
    suites: list[SuiteResult] = []
    duration_s: float = 0.0

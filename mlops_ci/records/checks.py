"""The data checks' results: findings, column summaries (in natural units too), datasets."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_serializer

from mlops_ci.records.drift import MAX_SHARES, Histogram, NumericSummary, ShareChange
from mlops_ci.records.base import ContentId, Ident, Message, PathText, Record, Sha, Status, float_out
from mlops_ci.records.suites import SuiteResult

MAX_FINDINGS = 2000
MAX_COLUMNS = 5000

class Finding(Record):
    check: Literal["data", "rows", "schema", "types", "nulls", "drift", "label_drift", "suite", "range"]
    dataset: Ident
    column: PathText | None = None
    metric: Ident | None = None
    value: float | None = None
    threshold: float | None = None
    status: Status
    message: Message

    _ser = field_serializer("value", "threshold")(lambda self, v: float_out(v))


class ColumnSummary(Record):
    column: PathText
    kind: Ident
    base_type: Ident | None = None
    head_type: Ident | None = None
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
    role: Literal["train", "eval"]
    path: PathText
    base_md5: ContentId | None = None
    head_md5: ContentId | None = None
    base_rows: int | None = None
    head_rows: int | None = None
    cached: list[Literal["base", "head"]] = Field(default=[], max_length=2)  # profiles that came from the cache
    columns: list[ColumnSummary] = Field(default=[], max_length=MAX_COLUMNS)


class ChecksRecord(Record):
    """The check stage's result."""

    kind: Literal["checks"] = "checks"
    status: Status
    skip_reason: Message | None = None
    base_sha: Sha | None = None
    head_sha: Sha | None = None
    datasets: list[DatasetCheck] = Field(default=[], max_length=2)
    findings: list[Finding] = Field(default=[], max_length=MAX_FINDINGS)
    suites: list[SuiteResult] = Field(default=[], max_length=3)
    duration_s: float = 0.0

    @property
    def verdict(self) -> Status:
        return self.status

"""Drift in natural units as stored in a record (``ColumnSummary``): one side of a numeric column,
a category's share moving, and base vs head over the same bins for a chart. Computed by
mlops_ci.checks.units; bounded and validated here, since a record read from an artifact is
untrusted."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_SHARES = 5  # categories (or classes) whose share moved most
MAX_CHART_CATEGORIES = 8  # categories in a histogram, the rest summed as OTHER
MAX_BINS = 101  # the config allows at most 100 histogram bins
MAX_VALUE_CHARS = 80  # a category as stored in a record


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NumericSummary(_Strict):
    """One side of a numeric column: the exact mean; median and percentiles of the row sample."""

    mean: float | None = None
    median: float | None = None
    p5: float | None = None
    p95: float | None = None


class ShareChange(_Strict):
    """A category's (or class's) share of the non-null rows, base → head."""

    value: str = Field(max_length=MAX_VALUE_CHARS + 1)
    base: float = Field(ge=0, le=1)
    head: float = Field(ge=0, le=1)


class Histogram(_Strict):
    """Base and head shares over the same bins. Numeric: ``edges`` are the base's quantiles and
    the bins are ``(-inf, e0], (e0, e1], ..., (ek, inf)``; otherwise ``categories`` names each
    bin (``__other__`` for the rest)."""

    edges: list[float] = Field(default=[], max_length=MAX_BINS - 1)
    categories: list[str] = Field(default=[], max_length=MAX_CHART_CATEGORIES + 1)
    base: list[float] = Field(max_length=MAX_BINS)
    head: list[float] = Field(max_length=MAX_BINS)

    @model_validator(mode="after")
    def _consistent(self) -> Histogram:
        if self.edges and self.categories:
            raise ValueError("a histogram has edges or categories, not both")
        if any(len(c) > MAX_VALUE_CHARS + 1 for c in self.categories):
            raise ValueError(f"a category is longer than {MAX_VALUE_CHARS + 1} characters")
        bins = len(self.edges) + 1 if self.edges else len(self.categories)
        if not (len(self.base) == len(self.head) == bins) or bins < 1:
            raise ValueError(f"a histogram needs one base and one head share per bin ({bins} bins)")
        if not all(math.isfinite(e) for e in self.edges) or any(a >= b for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError("histogram edges must be finite and increasing")
        if not all(math.isfinite(s) and 0 <= s <= 1.000001 for s in self.base + self.head):
            raise ValueError("histogram shares must be between 0 and 1")
        return self


__all__ = ["MAX_BINS", "MAX_CHART_CATEGORIES", "MAX_SHARES", "MAX_VALUE_CHARS", "Histogram", "NumericSummary",
           "ShareChange"]

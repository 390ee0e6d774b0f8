"""Drift in natural units: what a reviewer reads beside the effect sizes.

For a flagged numeric column: its mean, median, 5th and 95th percentile on both sides. For a
flagged categorical or boolean column: the categories whose share moved most. For the label,
when it is binary or categorical (or numeric with a few whole values): its class balance. And
for a chart, base and head over the same bins: the base's quantile edges, or the top categories.

Pure: profiles in, small records out (stored in ``ColumnSummary``). Means are exact; medians and
percentiles come from the profile's row sample; category shares are of the non-null rows.
The records are bounded and validated, since a record read from an artifact is untrusted.
"""

from __future__ import annotations

import math

from mlops_ci.checks.profile import OTHER, ColumnProfile, TableProfile
from mlops_ci.records.drift import (MAX_BINS, MAX_CHART_CATEGORIES, MAX_SHARES, MAX_VALUE_CHARS, Histogram,
                                    NumericSummary, ShareChange)

MAX_CLASSES = 10  # a numeric label with at most this many whole values is a class label
POSITIVE = ("1", "true", "yes", "y", "positive", "pos")  # a binary label's class shown first


def _clip(value: str) -> str:
    return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + "…"


def _shares(counts: dict[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total > 0 else {}


def numeric_summary(table: TableProfile, column: ColumnProfile) -> NumericSummary:
    import numpy as np

    sample = np.asarray(table.column_sample(column.name), dtype=float)
    if sample.size == 0:
        return NumericSummary(mean=column.mean)
    p5, median, p95 = (float(x) for x in np.quantile(sample, [0.05, 0.5, 0.95]))
    return NumericSummary(mean=column.mean, median=median, p5=p5, p95=p95)


def share_changes(base: dict[str, float], head: dict[str, float], limit: int = MAX_SHARES, *,
                  moved_only: bool = True) -> list[ShareChange]:
    """The ``limit`` values whose share moved most (shares of the counts given), largest move first;
    with ``moved_only`` none whose share stayed the same."""
    b, h = _shares(base), _shares(head)
    moved = [(abs(h.get(k, 0.0) - b.get(k, 0.0)), k) for k in {*b, *h} if k != OTHER]
    moved.sort(key=lambda m: (-m[0], m[1]))
    return [ShareChange(value=_clip(k), base=round(b.get(k, 0.0), 6), head=round(h.get(k, 0.0), 6))
            for move, k in moved[:limit] if move > 0 or not moved_only]


def class_counts(table: TableProfile, column: ColumnProfile) -> dict[str, float] | None:
    """A label's count per class, or None when it is not a class label: categorical and boolean
    labels by their (untruncated) category counts; numeric ones by the row sample when it holds
    at most :data:`MAX_CLASSES` whole values."""
    if column.kind in ("categorical", "boolean"):
        return None if column.truncated else {k: float(v) for k, v in column.categories.items()}
    if column.kind != "numeric":
        return None
    counts: dict[str, float] = {}
    for v in table.column_sample(column.name):
        if not float(v).is_integer():
            return None
        key = str(int(v))
        counts[key] = counts.get(key, 0.0) + 1.0
        if len(counts) > MAX_CLASSES:
            return None
    return counts


def class_balance(base: dict[str, float], head: dict[str, float]) -> list[ShareChange]:
    """The classes' shares; a binary label's positive class ("1", "true", "yes", else the rarer
    one in the base) first, otherwise the classes that moved most."""
    keys = {*base, *head}
    if len(keys) > 2:
        return share_changes(base, head, moved_only=False)
    b, h = _shares(base), _shares(head)
    first = next((k for k in keys if k.lower() in POSITIVE), None)
    order = sorted(keys, key=lambda k: (k != first, b.get(k, 0.0), k))
    return [ShareChange(value=_clip(k), base=round(b.get(k, 0.0), 6), head=round(h.get(k, 0.0), 6))
            for k in order]


def numeric_histogram(base: ColumnProfile, head: ColumnProfile) -> Histogram | None:
    """Base and head over the base's edges (``head`` must already be counted over them)."""
    if not base.edges or base.hist is None or head.hist is None or head.edges != base.edges:
        return None
    if len(base.edges) >= MAX_BINS:
        return None
    b, h = sum(base.hist), sum(head.hist)
    if b <= 0 or h <= 0:
        return None
    return Histogram(edges=list(base.edges), base=[round(x / b, 6) for x in base.hist],
                     head=[round(x / h, 6) for x in head.hist])


CHART_BINS = 12


def sample_histogram(base: list[float], head: list[float], bins: int = CHART_BINS) -> Histogram | None:
    """Base and head over the same equal-width bins, from the profiles' row samples: the bins span
    the 1st to the 99th percentile of both sides (what lies beyond falls in the end bins), so the
    two shapes can be compared by eye (bins from the base's quantiles would draw the base flat)."""
    import numpy as np

    if len(base) < 2 or len(head) < 2:
        return None
    both = np.concatenate([np.asarray(base, dtype=float), np.asarray(head, dtype=float)])
    low, high = np.percentile(both, [1, 99])
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return None
    edges = list(np.linspace(low, high, bins + 1)[1:-1])

    def shares(values: list[float]) -> list[float]:
        counts = np.bincount(np.searchsorted(edges, np.asarray(values, dtype=float), side="left"), minlength=bins)
        return [round(float(c) / len(values), 6) for c in counts]

    return Histogram(edges=[float(e) for e in edges], base=shares(base), head=shares(head))


def category_histogram(base: dict[str, float], head: dict[str, float],
                       limit: int = MAX_CHART_CATEGORIES) -> Histogram | None:
    """The ``limit`` categories largest on either side, the rest summed as :data:`OTHER`."""
    b, h = _shares(base), _shares(head)
    if not b or not h:
        return None
    keys = sorted({*b, *h} - {OTHER}, key=lambda k: (-max(b.get(k, 0.0), h.get(k, 0.0)), k))[:limit]
    bs = [b.get(k, 0.0) for k in keys]
    hs = [h.get(k, 0.0) for k in keys]
    rest_b, rest_h = 1 - sum(bs), 1 - sum(hs)
    if rest_b > 1e-9 or rest_h > 1e-9:
        keys, bs, hs = [*keys, OTHER], [*bs, max(rest_b, 0.0)], [*hs, max(rest_h, 0.0)]
    return Histogram(categories=[_clip(k) for k in keys], base=[round(x, 6) for x in bs],
                     head=[round(x, 6) for x in hs])


def category_counts(column: ColumnProfile) -> dict[str, float]:
    counts = {k: float(v) for k, v in column.categories.items()}
    if column.other:
        counts[OTHER] = counts.get(OTHER, 0.0) + float(column.other)
    return counts


# -- text ------------------------------------------------------------------------------------------
def decimals(spread: float | None) -> int:
    """Decimals that show three significant digits of ``spread`` (a column's p5–p95 range)."""
    if spread is None or not math.isfinite(spread) or spread <= 0:
        return 2
    return min(6, max(0, 2 - math.floor(math.log10(spread))))


def describe(base: NumericSummary | None, head: NumericSummary | None, shares: list[ShareChange], *,
             label: bool, quoted: bool) -> str:
    """A column's drift in natural units as one phrase ("" when there is nothing to say)."""
    if base is not None and head is not None:
        return describe_numeric(base, head)
    return describe_shares(shares, label=label, quoted=quoted) if shares else ""


def describe_numeric(base: NumericSummary, head: NumericSummary) -> str:
    """Like "mean 64.2 → 71.9, median 65.0 → 72.8, p5–p95 20.1–110.3 → 22.5–123.4": every number
    with the same decimals (from the base's p5–p95 range)."""
    spread = base.p95 - base.p5 if base.p5 is not None and base.p95 is not None else None
    digits = decimals(spread)

    def n(x: float | None) -> str:
        return "—" if x is None or not math.isfinite(x) else f"{x:,.{digits}f}"

    negative = any(x is not None and x < 0 for x in (base.p5, base.p95, head.p5, head.p95))
    sep = " to " if negative else "–"  # "-1.63–-0.5" would read as a subtraction

    def span(s: NumericSummary) -> str:
        return f"{n(s.p5)}{sep}{n(s.p95)}"

    parts = [f"mean {n(base.mean)} → {n(head.mean)}"]
    if base.median is not None or head.median is not None:
        parts.append(f"median {n(base.median)} → {n(head.median)}")
    if base.p5 is not None or head.p5 is not None:
        parts.append(f"p5–p95 {span(base)} → {span(head)}")
    return ", ".join(parts)


def describe_shares(shares: list[ShareChange], *, label: bool, quoted: bool) -> str:
    """Like "'basic' 50.0% → 20.1%, 'premium' 20.0% → 49.8%", or a label's "class 1 32.4% → 37.6%"
    (a binary label shows its first class only)."""
    if label and len(shares) == 2:
        shares = shares[:1]
    items = [f"{s.value!r}" if quoted else s.value for s in shares]
    text = ", ".join(f"{item} {s.base:.1%} → {s.head:.1%}" for item, s in zip(items, shares))
    if label:
        return ("class " if len(shares) == 1 else "classes ") + text
    return text

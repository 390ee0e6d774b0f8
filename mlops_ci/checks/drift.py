"""Drift between two column profiles as effect sizes: PSI and Jensen–Shannon distance.

No p-values: at the row counts of real data every tiny difference is "significant", so the
gates are thresholds on effect sizes (configurable under checks.drift).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlops_ci.checks.profile import OTHER, ColumnProfile

EPS = 1e-4  # floor for empty bins, so that PSI stays finite


def _proportions(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    if total <= 0:
        return [0.0 for _ in counts]
    return [c / total for c in counts]


def psi(base: Sequence[float], head: Sequence[float]) -> float:
    """Population stability index of two count vectors over the same bins."""
    p, q = _proportions(base), _proportions(head)
    total = 0.0
    for b, h in zip(p, q):
        b, h = max(b, EPS), max(h, EPS)
        total += (h - b) * math.log(h / b)
    return total


def js_distance(base: Sequence[float], head: Sequence[float]) -> float:
    """Jensen–Shannon distance (base-2, in [0, 1]) of two count vectors over the same bins."""
    p, q = _proportions(base), _proportions(head)
    if not any(p) or not any(q):
        return 0.0

    def kl(a: list[float], m: list[float]) -> float:
        return sum(x * math.log2(x / y) for x, y in zip(a, m) if x > 0)

    m = [(x + y) / 2 for x, y in zip(p, q)]
    return math.sqrt(max(0.0, (kl(p, m) + kl(q, m)) / 2))


def aligned_counts(base: ColumnProfile, head: ColumnProfile) -> tuple[list[float], list[float], list[str]]:
    """Count vectors of two profiles over the same bins or categories."""
    if base.kind == "numeric" and head.kind == "numeric" and base.hist is not None and head.hist is not None:
        if base.edges != head.edges:
            raise ValueError(f"column {base.name!r}: profiles have different histogram edges")
        labels = [f"bin{i}" for i in range(len(base.hist))]
        return [float(x) for x in base.hist], [float(x) for x in head.hist], labels
    keys = [k for k in base.categories if k != OTHER]
    keys += [k for k in head.categories if k != OTHER and k not in base.categories]
    b = [float(base.categories.get(k, 0)) for k in keys]
    h = [float(head.categories.get(k, 0)) for k in keys]
    if OTHER in base.categories or OTHER in head.categories:
        keys.append(OTHER)
        b.append(float(base.categories.get(OTHER, 0)))
        h.append(float(head.categories.get(OTHER, 0)))
    return b, h, keys


def new_categories(base: ColumnProfile, head: ColumnProfile) -> list[str]:
    if base.kind == "numeric" or OTHER in base.categories:
        return []  # with a truncated base we cannot tell "new" from "rare"
    return [k for k in head.categories if k != OTHER and k not in base.categories]


def vanished_categories(base: ColumnProfile, head: ColumnProfile) -> list[str]:
    if base.kind == "numeric" or OTHER in head.categories:
        return []
    return [k for k in base.categories if k != OTHER and k not in head.categories]

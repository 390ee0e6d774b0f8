"""Drift between two column profiles as effect sizes: PSI, Jensen–Shannon and Wasserstein/σ.

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


def wasserstein_sigma(base: Sequence[float], head: Sequence[float], sigma: float | None,
                      points: int = 512) -> float | None:
    """Earth mover's distance between two samples, in units of the base's standard deviation.

    Computed on a grid of quantiles of both samples (W1 = ∫|F⁻¹(u) − G⁻¹(u)| du); ``None``
    when a side has no values or the base does not vary.
    """
    import numpy as np

    if not base or not head or not sigma or sigma <= 0:
        return None
    grid = (np.arange(points) + 0.5) / points
    qb = np.quantile(np.asarray(base, dtype=float), grid)
    qh = np.quantile(np.asarray(head, dtype=float), grid)
    return float(np.abs(qb - qh).mean() / sigma)


def aligned_counts(base: ColumnProfile, head: ColumnProfile, *, top_k: int = 20
                   ) -> tuple[list[float], list[float], list[str]]:
    """Count vectors of two profiles over the same bins, or over the top categories of either
    side with the rest summed as :data:`OTHER` (rare categories add noise, not signal)."""
    if base.kind == "numeric" and head.kind == "numeric" and base.hist is not None and head.hist is not None:
        if base.edges != head.edges:
            raise ValueError(f"column {base.name!r}: profiles have different histogram edges")
        labels = [f"bin{i}" for i in range(len(base.hist))]
        return [float(x) for x in base.hist], [float(x) for x in head.hist], labels
    keys = [k for k in base.top_categories(top_k) if k != OTHER]
    keys += [k for k in head.top_categories(top_k) if k != OTHER and k not in keys]
    b = [float(base.categories.get(k, 0)) for k in keys]
    h = [float(head.categories.get(k, 0)) for k in keys]
    rest_b, rest_h = base.valid - sum(b), head.valid - sum(h)
    if rest_b > 0 or rest_h > 0:
        keys.append(OTHER)
        b.append(float(max(rest_b, 0)))
        h.append(float(max(rest_h, 0)))
    return b, h, keys


def new_categories(base: ColumnProfile, head: ColumnProfile) -> list[str]:
    """Head categories the base never had, most frequent first."""
    if base.kind == "numeric" or base.truncated:
        return []  # with a truncated base we cannot tell "new" from "rare"
    new = [k for k in head.categories if k not in base.categories]
    return sorted(new, key=lambda k: (-head.categories[k], k))


def vanished_categories(base: ColumnProfile, head: ColumnProfile) -> list[str]:
    """Base categories the head no longer has, most frequent first."""
    if base.kind == "numeric" or head.truncated:
        return []
    gone = [k for k in base.categories if k not in head.categories]
    return sorted(gone, key=lambda k: (-base.categories[k], k))

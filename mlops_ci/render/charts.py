"""Mermaid charts (``xychart-beta``, which GitHub renders natively): the training curve and
base vs head histograms of drifted columns.

Everything that comes from a record is sanitised before it enters a chart: names keep only
ASCII letters, digits and ``_./ -`` (:func:`mermaid_text`), numbers are written plainly (no
exponent). A chart never holds a double quote, a backtick or a line break of its own, so text
cannot leave its quoted string or the code fence.

``xychart-beta`` draws two ``bar`` series on top of each other rather than side by side, so a
histogram shows the head as bars and the base as a line, and its title says which is which.
"""

from __future__ import annotations

import math
import re

from mlops_ci.checks.profile import OTHER
from mlops_ci.checks.units import Histogram
from mlops_ci.render.document import details
from mlops_ci.render.markdown import esc, num, plain

MAX_CURVE_POINTS = 50  # the training curve is sampled down to this many steps
MAX_CURVE_LINES = 4
CURVE_X_KEYS = ("step", "epoch", "iteration")
# Mermaid's default xychart colours are a pale blue on white in GitHub's light theme: one strong
# colour per series (head bars or the curve, then the base line), readable in light and dark
PALETTE = ("---", "config:", "  themeVariables:", "    xyChart:", '      plotColorPalette: "#0969da, #cf222e"', "---")
MAX_CHART_BINS = 12  # finer histograms are shown with adjacent bins merged
MAX_LABEL_CHARS = 14
_MERMAID_UNSAFE = re.compile(r"[^A-Za-z0-9_./ -]")


def mermaid_text(text: object, limit: int = 60) -> str:
    """Untrusted text for a quoted Mermaid string: masked, then unsafe characters become ``_``."""
    return _MERMAID_UNSAFE.sub("_", plain(text))[:limit]


def _sample(points: list, limit: int) -> list:
    """At most ``limit`` evenly spaced items, always keeping the first and the last."""
    if len(points) <= limit:
        return points
    return [points[round(i * (len(points) - 1) / (limit - 1))] for i in range(limit)]


def _plain(value: float) -> str:
    """A number Mermaid parses (no exponent notation)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def training_curve(history: list[dict[str, float]]) -> list[str]:
    """A Mermaid ``xychart-beta`` line chart of the curve and the same numbers as a table.

    Empty without a curve (fewer than two steps: the final metrics say it all). Series with a
    non-finite value are left out of the chart (the table shows them); metric names are sanitised
    for Mermaid and escaped for Markdown."""
    if len(history) < 2:
        return []
    xkey = next((k for k in CURVE_X_KEYS if all(k in h for h in history)), None)
    names: list[str] = []
    for h in history:
        names += [k for k in h if k != xkey and k not in names]
    if not names:
        return []
    points = _sample(history, MAX_CURVE_POINTS)
    xs = [_plain(h[xkey]) if xkey else str(i + 1) for i, h in enumerate(points)]
    charted = [n for n in names if all(n in h and math.isfinite(h[n]) for h in points)][:MAX_CURVE_LINES]
    out = ["", f"Training curve ({len(history)} steps" + (f", {len(points)} shown" if len(points) < len(history)
                                                          else "") + "):"]
    if charted:
        label = ", ".join(mermaid_text(n, 200) for n in charted)
        out += ["", "```mermaid", *PALETTE, "xychart-beta", f'    title "{label}"',
                f'    x-axis "{xkey or "step"}" [' + ", ".join(f'"{x}"' for x in xs) + "]"]
        out += ["    line [" + ", ".join(_plain(h[n]) for h in points) + "]" for n in charted]
        out.append("```")
    table = [f"| {esc(xkey or 'step')} | " + " | ".join(esc(n) for n in names) + " |",
             "|---" * (len(names) + 1) + "|"]
    table += [f"| {x} | " + " | ".join(num(h.get(n)) for n in names) + " |" for x, h in zip(xs, points)]
    return out + ["", details("Training curve as a table", table)]


def edge_text(x: float, decimals: int) -> str:
    """An edge in fixed decimals, a minus sign for negatives (it reads apart from the range dash)."""
    text = f"{abs(x):,.{decimals}f}"
    return ("−" if x < 0 and text.strip("0.,") else "") + text


def bin_labels(edges: list[float], groups: list[tuple[int, int]]) -> list[str]:
    """Short labels of bins ``(-inf, e0], (e0, e1], ..., (ek, inf)`` merged into ``groups`` (first
    and last bin index of each): "≤20", "20–35", ">110". Every edge has the same decimals, two
    significant digits of the edges' range to start with, more until the labels differ."""
    spread = edges[-1] - edges[0]
    start = 1 - math.floor(math.log10(spread)) if spread > 0 else 2
    labels: list[str] = []
    for decimals in range(max(0, start), max(0, start) + 6):
        labels = []
        for first, last in groups:
            lo = edge_text(edges[first - 1], decimals) if first > 0 else None
            hi = edge_text(edges[last], decimals) if last < len(edges) else None
            labels.append(f"≤{hi}" if lo is None else f">{lo}" if hi is None else f"{lo}–{hi}")
        if len(set(labels)) == len(labels):
            break
    return _unique(labels)


def _unique(labels: list[str]) -> list[str]:
    """Band labels must differ (Mermaid would draw two bars in one place): repeats get a suffix."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def _groups(n: int) -> list[tuple[int, int]]:
    size = math.ceil(n / MAX_CHART_BINS)
    return [(i, min(i + size, n) - 1) for i in range(0, n, size)]


def _bins(hist: Histogram) -> tuple[list[str], list[float], list[float]]:
    if hist.edges:
        groups = _groups(len(hist.base))
        labels = bin_labels(hist.edges, groups)
    else:
        groups = [(i, i) for i in range(len(hist.base))]
        labels = _unique(["other" if c == OTHER else (mermaid_text(c, MAX_LABEL_CHARS).strip() or "_")
                          for c in hist.categories])
    base = [sum(hist.base[a:b + 1]) for a, b in groups]
    head = [sum(hist.head[a:b + 1]) for a, b in groups]
    return labels, base, head


def histogram_chart(column: str, dataset: str, hist: Histogram, *, classes: bool = False) -> list[str]:
    """A Mermaid chart of one column's distribution, base vs head over the same bins (percent of
    the non-null rows): the head as bars, the base as a line. ``classes``: a label's classes."""
    labels, base, head = _bins(hist)
    if not labels:
        return []
    top = max(base + head) * 100
    step = 10 if top > 50 else 5
    ymax = max(step, math.ceil(top / step) * step)
    what = "equal-width bins" if hist.edges else "classes" if classes else "top categories"
    title = f"{mermaid_text(column)} ({mermaid_text(dataset, 20)}): head as bars, base as line, {what}"
    return ["```mermaid", *PALETTE, "xychart-beta", f'    title "{title}"',
            "    x-axis [" + ", ".join(f'"{label}"' for label in labels) + "]",
            f'    y-axis "percent of rows" 0 --> {ymax}',
            "    bar [" + ", ".join(_plain(round(100 * s, 1)) for s in head) + "]",
            "    line [" + ", ".join(_plain(round(100 * s, 1)) for s in base) + "]",
            "```"]

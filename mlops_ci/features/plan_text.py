"""`feast plan`'s registry diff as the report shows it.

Feast 0.67 reports every view as updated on every plan: a data source's ``meta`` (its creation and
update timestamps) is set anew each time the definitions are read. Those timestamps are dropped
before comparing, so a view is "updated" only when something a reader can see changed; each
remaining property is one line, ``before -> after``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_META = re.compile(r"meta \{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")
_STAMP = re.compile(r"(created|last_updated)_timestamp \{[^{}]*\}")
SIGN = {"CREATE": "+", "DELETE": "-", "UPDATE": "~"}
MAX_VALUE = 400


def _visible(text: str) -> str:
    return " ".join(_STAMP.sub("", _META.sub("", text or "")).split())


CONTEXT = 80


def _pair(before: str, after: str) -> str:
    """``before -> after``; long values cut to where they differ (with some context on each side)."""
    before, after = _visible(before), _visible(after)
    if len(before) <= MAX_VALUE and len(after) <= MAX_VALUE:
        return f"{before} -> {after}"
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end = 0
    while end < min(len(before), len(after)) - start and before[-1 - end] == after[-1 - end]:
        end += 1
    lo = max(0, start - CONTEXT)

    def cut(text: str) -> str:
        hi = min(len(text), len(text) - end + CONTEXT, lo + MAX_VALUE)
        return ("… " if lo else "") + text[lo:hi] + (" …" if hi < len(text) else "")

    return f"{cut(before)} -> {cut(after)}"


def render(objects: Iterable) -> tuple[str, dict[str, int]]:
    """The diff text (``+``/``-``/``~`` per object, a line per changed property) and the count of
    objects per transition, less what only Feast's own timestamps changed."""
    lines: list[str] = []
    counts: dict[str, int] = {}
    for obj in objects:
        if obj.transition not in SIGN:
            continue
        changes = [c for c in obj.changes if _visible(c.before) != _visible(c.after)]
        if obj.transition == "UPDATE" and not changes:
            continue
        counts[obj.transition] = counts.get(obj.transition, 0) + 1
        lines.append(f"{SIGN[obj.transition]} {obj.type} {obj.name}")
        lines += [f"    {c.property}: {_pair(c.before, c.after)}" for c in changes]
    return "\n".join(lines), counts


__all__ = ["render"]

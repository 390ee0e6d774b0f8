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


def _short(text: str) -> str:
    text = _visible(text)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + " …"


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
        lines += [f"    {c.property}: {_short(c.before)} -> {_short(c.after)}" for c in changes]
    return "\n".join(lines), counts


__all__ = ["render"]

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


_FIELD = re.compile(r'name: "([^"]+)"\s+value_type: (\w+)')
_VIEW_BLOCK = re.compile(r'feature_view_name: "([^"]+)"(.*?)(?=feature_view_name: "|$)', re.S)
_SECONDS = re.compile(r"^seconds: (\d+)$")


def _fields(text: str) -> dict[str, str]:
    return dict(_FIELD.findall(text))


def _field_lines(before: str, after: str, prefix: str = "") -> list[str]:
    old, new = _fields(before), _fields(after)
    lines = [f"{prefix}+ field {f} ({new[f]})" for f in new if f not in old]
    lines += [f"{prefix}- field {f} ({old[f]})" for f in old if f not in new]
    lines += [f"{prefix}~ field {f}: {old[f]} -> {new[f]}" for f in old if f in new and old[f] != new[f]]
    return lines


def _service_lines(before: str, after: str) -> list[str]:
    old = {v: body for v, body in _VIEW_BLOCK.findall(_visible(before))}
    new = {v: body for v, body in _VIEW_BLOCK.findall(_visible(after))}
    lines = [f"+ reads view {v}: {', '.join(_fields(new[v]))}" for v in new if v not in old]
    lines += [f"- reads view {v}" for v in old if v not in new]
    for v in (v for v in old if v in new):
        lines += _field_lines(old[v], new[v], prefix=f"{v}: ")
    return lines


def _ttl(text: str) -> str:
    match = _SECONDS.match(_visible(text))
    if not match:
        return _visible(text) or "none"
    seconds = int(match[1])
    return f"{seconds // 86400}d" if seconds % 86400 == 0 else f"{seconds}s"


def _change_lines(obj, change) -> list[str]:
    """A changed property as lines a reviewer reads: fields added, removed or retyped; else before -> after."""
    if change.property == "features" and obj.type == "feature view" and (_fields(change.before) or
                                                                          _fields(change.after)):
        return _field_lines(change.before, change.after) or [f"features: {_pair(change.before, change.after)}"]
    if change.property == "features" and obj.type == "feature service":
        return _service_lines(change.before, change.after) or [f"features: {_pair(change.before, change.after)}"]
    if change.property == "ttl":
        return [f"ttl: {_ttl(change.before)} -> {_ttl(change.after)}"]
    return [f"{change.property}: {_pair(change.before, change.after)}"]


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
        lines += [f"    {line}" for c in changes for line in _change_lines(obj, c)]
    return "\n".join(lines), counts


DONE = {"CREATE": "created", "UPDATE": "updated", "DELETE": "deleted"}


def summary(counts: dict[str, int]) -> str:
    """"2 updated, 1 created" (or "no changes")."""
    return ", ".join(f"{n} {DONE.get(t, t.lower())}" for t, n in sorted(counts.items())) or "no changes"


__all__ = ["DONE", "render", "summary"]

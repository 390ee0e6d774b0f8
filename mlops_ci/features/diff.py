"""What a change does to the feature definitions: the base's and the head's descriptions (the Feast
worker's ``describe``: entities, views with their fields and types, services with the views they
read) compared, without Feast.

A change is *breaking* for a reader of the old definition when a field it may read is removed or
retyped, the view's entities (join keys) change, or the view is removed. Adding a field, adding a
view, or adding a new versioned view beside the old one (``customer_stats_v2``) breaks nobody.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

Description = Mapping  # the worker's describe answer (JSON)


@dataclass
class Change:
    kind: str  # "view", "service", "entity"
    name: str
    change: str  # "added", "removed", "changed"
    details: list[str] = field(default_factory=list)
    breaking: list[str] = field(default_factory=list)


def _views(desc: Description | None) -> Mapping:
    return (desc or {}).get("views", {}) or {}


def _services(desc: Description | None) -> Mapping:
    return (desc or {}).get("services", {}) or {}


def _entities(desc: Description | None) -> Mapping:
    return (desc or {}).get("entities", {}) or {}


def _view_change(name: str, old: Mapping, new: Mapping, sources: tuple[Mapping, Mapping]) -> Change | None:
    details, breaking = [], []
    old_fields, new_fields = old.get("fields", {}), new.get("fields", {})
    for f in sorted(set(new_fields) - set(old_fields)):
        details.append(f"field {f} added ({new_fields[f]})")
    for f in sorted(set(old_fields) - set(new_fields)):
        details.append(f"field {f} removed")
        breaking.append(f"field {f} removed")
    for f in sorted(set(old_fields) & set(new_fields)):
        if old_fields[f] != new_fields[f]:
            details.append(f"field {f} retyped: {old_fields[f]} -> {new_fields[f]}")
            breaking.append(f"field {f} retyped ({old_fields[f]} -> {new_fields[f]})")
    if sorted(old.get("entities", [])) != sorted(new.get("entities", [])):
        text = f"entities {sorted(old.get('entities', []))} -> {sorted(new.get('entities', []))}"
        details.append(text)
        breaking.append(text)
    for key, label in (("ttl_s", "ttl"), ("online", "online"), ("kind", "kind")):
        if old.get(key) != new.get(key):
            details.append(f"{label}: {old.get(key)} -> {new.get(key)}")
    old_src, new_src = old.get("source") or {}, new.get("source") or {}
    if old_src != new_src:
        details.append(f"source: {old_src.get('name') or old_src.get('path')} -> "
                       f"{new_src.get('name') or new_src.get('path')}")
    path = new_src.get("path")
    if path and sources[0].get(path) != sources[1].get(path) and path in sources[1]:
        details.append(f"source data {path} changed")
    if not details:
        return None
    return Change("view", name, "changed", details, breaking)


def compare(base: Description | None, head: Description) -> list[Change]:
    """The views, services and entities that differ, sorted by kind and name."""
    out: list[Change] = []
    sources = ((base or {}).get("source_files", {}) or {}, head.get("source_files", {}) or {})
    bv, hv = _views(base), _views(head)
    for name in sorted(set(bv) | set(hv)):
        if name not in bv:
            fields = ", ".join(f"{k} ({v})" for k, v in sorted(hv[name].get("fields", {}).items()))
            out.append(Change("view", name, "added", [f"fields: {fields}" if fields else "no fields"]))
        elif name not in hv:
            out.append(Change("view", name, "removed", ["view removed"], ["view removed"]))
        else:
            found = _view_change(name, bv[name], hv[name], sources)
            if found is not None:
                out.append(found)
    bs, hs = _services(base), _services(head)
    for name in sorted(set(bs) | set(hs)):
        if name not in bs:
            out.append(Change("service", name, "added", [_reads(hs[name])]))
        elif name not in hs:
            out.append(Change("service", name, "removed", ["service removed"], ["service removed"]))
        elif bs[name] != hs[name]:
            out.append(Change("service", name, "changed", [f"{_reads(bs[name])} -> {_reads(hs[name])}"]))
    be, he = _entities(base), _entities(head)
    for name in sorted(set(be) | set(he)):
        if name not in be:
            out.append(Change("entity", name, "added", [f"join keys {he[name].get('join_keys')}"]))
        elif name not in he:
            out.append(Change("entity", name, "removed", ["entity removed"], ["entity removed"]))
        elif be[name] != he[name]:
            text = f"join keys {be[name].get('join_keys')} -> {he[name].get('join_keys')}"
            out.append(Change("entity", name, "changed", [text], [text]))
    return out


def _reads(service: Mapping) -> str:
    views = service.get("views", {}) or {}
    return "reads " + ", ".join(f"{v}[{', '.join(fs)}]" for v, fs in sorted(views.items())) if views else "reads nothing"


def views_of(desc: Description | None, service: str) -> dict[str, list[str]]:
    """The views (and their fields) ``service`` reads in ``desc``; {} when it is not defined there."""
    return dict((_services(desc).get(service) or {}).get("views", {}) or {})


def affecting(changes: list[Change], desc_base: Description | None, desc_head: Description,
              service: str) -> list[str]:
    """Why a model reading ``service`` is affected: "feature view X changed", one per change it reads."""
    read = set(views_of(desc_base, service)) | set(views_of(desc_head, service))
    reasons = []
    for c in changes:
        if c.kind == "view" and c.name in read:
            reasons.append(f"feature view {c.name} {c.change}")
        elif c.kind == "service" and c.name == service:
            reasons.append(f"feature service {c.name} {c.change}")
    return reasons


def breaking_for(changes: list[Change], desc_base: Description | None, service: str) -> list[tuple[str, str]]:
    """(view, what breaks) for every breaking change to a view ``service`` read at the base, limited
    to the fields it read (a removed field it never read breaks nothing)."""
    read = views_of(desc_base, service)
    out = []
    for c in changes:
        if c.kind == "view" and c.name in read:
            for b in c.breaking:
                f = b.split()[1] if b.startswith("field ") else None
                if f is None or not read[c.name] or f in read[c.name]:
                    out.append((c.name, b))
        elif c.kind == "service" and c.name == service and c.change == "removed":
            out.append((c.name, "service removed"))
        elif c.kind == "entity" and c.breaking:
            for view in read:
                if c.name in ((_views(desc_base).get(view) or {}).get("entities") or []):
                    out.append((view, f"entity {c.name}: {c.breaking[0]}"))
    return out


def service_version(desc: Description, service: str) -> str | None:
    """A content id of what ``service`` serves: its views' fields, types, entities, ttl, sources and
    the source files' hashes (12 hex digits); None when it is not defined."""
    views = views_of(desc, service)
    if not views and service not in _services(desc):
        return None
    all_views, files = _views(desc), desc.get("source_files", {}) or {}
    parts = {}
    for name, fields in sorted(views.items()):
        view = dict(all_views.get(name) or {})
        view["read"] = sorted(fields)
        path = (view.get("source") or {}).get("path")
        view["source_sha256"] = files.get(path) if path else None
        parts[name] = view
    blob = json.dumps({"service": service, "views": parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


__all__ = ["Change", "Description", "affecting", "breaking_for", "compare", "service_version", "views_of"]

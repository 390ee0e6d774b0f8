"""State of the local Argo server: the stored objects (Workflows, WorkflowTemplates, JobSets),
the pods the controller ran and their logs, plus the selector and ``fields`` helpers both API
faces use. Everything is guarded by one re-entrant lock (``Store.lock``)."""

from __future__ import annotations

import copy
import itertools
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SelectorError(ValueError):
    pass


_REQUIREMENT = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$")


def parse_selector(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """A Kubernetes label selector: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``,
    ``k notin (a)``, joined by commas. Returns (key, op, values); raises SelectorError."""
    parts, depth, current = [], 0, ""
    for ch in text or "":
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    out = []
    for part in parts:
        m = _REQUIREMENT.match(part)
        if not m:
            raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
        neg, key, op, value, set_op, values = m.groups()
        if neg:
            if op or set_op:
                raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
            out.append((key, "!exists", ()))
        elif set_op:
            out.append((key, set_op, tuple(v.strip() for v in values.split(",") if v.strip())))
        elif op:
            out.append((key, "!=" if op == "!=" else "=", (value,)))
        else:
            out.append((key, "exists", ()))
    return out


def selector_matches(requirements, labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    for key, op, values in requirements:
        has, value = key in labels, labels.get(key)
        ok = {"=": has and value == values[0], "!=": not has or value != values[0],
              "exists": has, "!exists": not has, "in": has and value in values,
              "notin": not has or value not in values}[op]
        if not ok:
            return False
    return True


def pick_fields(doc: dict, fields: str | None, *, prefix: str = "") -> dict:
    """Argo Server's ``fields``: a comma list of dotted paths to keep (``metadata.name``), or of
    paths to drop when the list starts with ``-`` (``-status.nodes``). For a list, the paths
    start with ``items.`` and ``prefix`` is ``"items."``."""
    if not fields:
        return doc
    paths = [p.strip() for p in fields.split(",") if p.strip()]
    exclude = paths and paths[0].startswith("-")
    paths = [p.lstrip("-") for p in paths]
    if prefix:
        paths = [p[len(prefix):] for p in paths if p.startswith(prefix)]
    if exclude:
        out = copy.deepcopy(doc)
        for path in paths:
            *parents, last = path.split(".")
            node = out
            for key in parents:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(last, None)
        return out
    out: dict[str, Any] = {}
    for path in paths:
        keys = path.split(".")
        src: Any = doc
        for key in keys:
            src = src.get(key) if isinstance(src, dict) else None
        if src is None:
            continue
        dst = out
        for key in keys[:-1]:
            dst = dst.setdefault(key, {})
        dst[keys[-1]] = copy.deepcopy(src)
    return out


@dataclass
class Pod:
    """A pod the controller ran (a local process): what CoreV1Api and the log endpoints see."""

    name: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    containers: list[str]
    workflow: str | None  # the Workflow whose node it is (None for a JobSet's pod)
    phase: str = "Pending"
    log: list[str] = field(default_factory=list)  # lines of the main container
    created: str = field(default_factory=now)

    def manifest(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(self.labels),
                             "annotations": dict(self.annotations), "creationTimestamp": self.created,
                             "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.namespace}/{self.name}"))},
                "spec": {"containers": [{"name": c, "image": "local"} for c in self.containers]},
                "status": {"phase": self.phase}}


class Store:
    """Objects by (plural, namespace, name), each a JSON document as the API server keeps it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], Pod] = {}
        self._rv = itertools.count(1000)

    def touch(self, obj: dict) -> None:
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        self.changed.notify_all()

    def insert(self, plural: str, namespace: str, obj: dict) -> dict:
        """Fill server-set metadata and store; the caller checked the name is free."""
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta["generation"] = 1
        self.objects[(plural, namespace, meta["name"])] = obj
        self.touch(obj)
        return obj

    def get(self, plural: str, namespace: str, name: str) -> dict | None:
        return self.objects.get((plural, namespace, name))

    def remove(self, plural: str, namespace: str, name: str) -> dict | None:
        obj = self.objects.pop((plural, namespace, name), None)
        self.changed.notify_all()
        return obj

    def list(self, plural: str, namespace: str, selector: str | None = None) -> list[dict]:
        requirements = parse_selector(selector or "")
        found = [obj for (p, ns, _), obj in self.objects.items() if p == plural and ns == namespace
                 and selector_matches(requirements, obj["metadata"].get("labels"))]
        return sorted(found, key=lambda o: o["metadata"]["name"])

    def resource_version(self) -> str:
        return str(next(self._rv))

    @staticmethod
    def generated_name(meta: dict) -> None:
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))

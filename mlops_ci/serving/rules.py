"""What the schemas leave open, checked on every object a promotion writes.

The API server checks these beyond the OpenAPI schemas (ObjectMeta names, label keys and
values, resource quantities), and ISVC_STRUCTURE types the InferenceService fields mlops-ci
writes where no KServe CRD is at hand. Each check returns (field, message) pairs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlops_ci.config.schema import quantity_value
from mlops_ci.serving.crds import validator


def dotted(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out

SCALE_METRICS = ["cpu", "memory", "concurrency", "rps"]
# The InferenceService fields mlops-ci writes, as the KServe CRD types them (a test keeps this
# in line with the CRD in ../shared/contracts). Checked even where no CRD is at hand.
ISVC_STRUCTURE: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "spec": {"type": "object", "required": ["predictor"], "properties": {
            "predictor": {"type": "object", "properties": {
                "minReplicas": {"type": "integer", "minimum": 0},
                "maxReplicas": {"type": "integer", "minimum": 0},
                "scaleMetric": {"type": "string", "enum": SCALE_METRICS},
                "scaleTarget": {"type": "integer"},
                "canaryTrafficPercent": {"type": "integer", "minimum": 0, "maximum": 100},
                "model": {"type": "object", "properties": {
                    "modelFormat": {"type": "object", "required": ["name"],
                                    "properties": {"name": {"type": "string"}}},
                    "protocolVersion": {"type": "string"},
                    "runtime": {"type": "string"},
                    "storageUri": {"type": "string"},
                    "resources": {"type": "object", "properties": {"requests": {"type": "object"},
                                                                   "limits": {"type": "object"}}},
                }},
            }},
        }},
    },
}
STRUCTURES = {("serving.kserve.io/v1beta1", "InferenceService"): ISVC_STRUCTURE}


def structure_problems(doc: dict) -> list[tuple[str, str]]:
    schema = STRUCTURES.get((doc["apiVersion"], doc["kind"]))
    if schema is None:
        return []
    return [(dotted(e.absolute_path), e.message) for e in validator(schema).iter_errors(doc)]


DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# kinds whose name becomes a DNS label of a Service (RFC 1035: starts with a letter)
DNS_1035_KINDS = {"Service", "InferenceService"}


def metadata_problems(doc: dict) -> list[tuple[str, str]]:
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        return [("", "metadata is missing or not a mapping")]
    problems = []
    name = meta.get("name")
    strict = doc["kind"] in DNS_1035_KINDS
    if not isinstance(name, str) or len(name) > 63 or not (DNS_1035 if strict else DNS_1123).match(name):
        problems.append(("name", f"{name!r} is not a valid {doc['kind']} name: up to 63 lowercase letters, "
                         f"digits and '-', starting with a {'letter' if strict else 'letter or digit'}"))
    namespace = meta.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or len(namespace) > 63
                                  or not DNS_1123.fullmatch(namespace)):
        problems.append(("namespace", f"{namespace!r} is not a namespace name"))
    for kind in ("labels", "annotations"):
        entries = meta.get(kind)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            problems.append((kind, f"{kind} must be a mapping"))
            continue
        for key, value in entries.items():
            problems += [(f"{kind}.{key}", msg) for msg in _key_problems(key)]
            if not isinstance(value, str):
                problems.append((f"{kind}.{key}", f"value {value!r} is a {type(value).__name__}, not a string "
                                 "(quote it)"))
            elif kind == "labels" and (len(value) > 63 or not LABEL_VALUE.fullmatch(value)):
                problems.append((f"{kind}.{key}", f"{value!r} is not a label value: up to 63 letters, digits, "
                                 "'-', '_' and '.', starting and ending with a letter or digit"))
    return problems


def _key_problems(key: Any) -> list[str]:
    if not isinstance(key, str):
        return [f"key {key!r} is not a string"]
    prefix, _, name = key.rpartition("/")
    problems = []
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)):
        problems.append(f"key {key!r}: its prefix is not a DNS subdomain")
    if len(name) > 63 or not QUALIFIED_NAME.fullmatch(name):
        problems.append(f"key {key!r} is not a qualified name (63 characters at most)")
    return problems


def _resource_blocks(node: Any, where: tuple = ()) -> Iterator[tuple[tuple, dict]]:
    """Every `resources: {requests, limits}` mapping in an object, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if (key == "resources" and isinstance(value, dict)
                    and set(value) & {"requests", "limits"}):
                yield where + (key,), value
            else:
                yield from _resource_blocks(value, where + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _resource_blocks(value, where + (i,))


def quantity_problems(doc: dict) -> list[tuple[str, str]]:
    problems = []
    for where, block in _resource_blocks(doc.get("spec")):
        base = ("spec",) + where
        values: dict[str, dict[str, float]] = {}
        for side in ("requests", "limits"):
            entries = block.get(side)
            if entries is None:
                continue
            if not isinstance(entries, dict):
                problems.append((dotted(base + (side,)), f"{side} must be a mapping of resource names to "
                                 "quantities"))
                continue
            for name, raw in entries.items():
                value = quantity_value(str(raw)) if isinstance(raw, (str, int, float)) and not isinstance(
                    raw, bool) else None
                if value is None:
                    problems.append((dotted(base + (side, name)), f"{raw!r} is not a Kubernetes quantity "
                                     "(e.g. 500m, 2, 512Mi, 4Gi)"))
                else:
                    values.setdefault(side, {})[str(name)] = value
        requests, limits = values.get("requests", {}), values.get("limits", {})
        for name in sorted(set(requests) & set(limits)):
            extended = "/" in name and not name.startswith("kubernetes.io/")
            if extended and requests[name] != limits[name]:
                problems.append((dotted(base + ("requests", name)), f"requests and limits of {name} differ: "
                                 "an extended resource (a GPU) cannot be overcommitted; make them equal"))
            elif requests[name] > limits[name]:
                problems.append((dotted(base + ("requests", name)), f"requests.{name} {block['requests'][name]!r}"
                                 f" is above limits.{name} {block['limits'][name]!r}"))
    return problems

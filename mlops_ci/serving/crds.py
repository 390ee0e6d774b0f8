"""Custom resource definitions read from files: the schema of a custom resource's kind.

mlops-ci bundles no CRD: the folders come from MLOPS_CI_CRDS (see validate.py). A CRD's schema
is ``spec.versions[*].schema.openAPIV3Schema`` of the served version, closed as the API
server's strict field validation is (an unknown field is refused).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class CrdIndex:
    """The CRDs in the files under some folders, found by (group, version, kind) on demand."""

    def __init__(self, paths: tuple[Path, ...]) -> None:
        self.paths = paths

    def files(self) -> Iterator[Path]:
        for base in self.paths:
            if base.is_file():
                yield base
            elif base.is_dir():
                yield from sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())

    def validator(self, api_version: str, kind: str):
        group, _, version = api_version.rpartition("/")
        for path in self.files():
            schema = _crd_schema(str(path), path.stat().st_mtime_ns, group, version, kind)
            if schema is not None:
                return validator(schema), path
        return None, None


@functools.cache
def _crd_schema(path: str, mtime: int, group: str, version: str, kind: str) -> Any:
    """The closed schema of ``kind`` in the CRD file ``path`` (None: not defined there), parsed once
    per file version and kept on disk: a multi-megabyte CRD takes about a second to parse, which
    every promotion in a new process would pay again."""
    cached = _cached_path(path, mtime, group, version, kind)
    if cached is not None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return json.loads(cached.read_text(encoding="utf-8"))["schema"]
    schema = _parse_crd(path, group, version, kind)
    if cached is not None:
        with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
            tmp.write_text(json.dumps({"schema": schema}), encoding="utf-8")
            os.replace(tmp, cached)
    return schema


def _cached_path(path: str, mtime: int, group: str, version: str, kind: str) -> Path | None:
    """Where the parsed schema is kept: keyed by the file (path, mtime, size), the kind asked for and
    this module's own text (a change to :func:`closed` never reads an old result)."""
    from mlops_ci.toolenv import cache_root

    try:
        size = Path(path).stat().st_size
        module = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    except OSError:
        return None
    key = hashlib.sha256(f"{path}\0{mtime}\0{size}\0{group}\0{version}\0{kind}\0{module}".encode()).hexdigest()
    return cache_root() / "crds" / f"{key[:32]}.json"


def _parse_crd(path: str, group: str, version: str, kind: str) -> Any:
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    if "CustomResourceDefinition" not in text or f"kind: {kind}" not in text or group not in text:
        return None  # skip parsing the (multi-megabyte) CRDs of other kinds
    for doc in _load_all(text):
        if not (isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"):
            continue
        spec = doc.get("spec") or {}
        if spec.get("group") != group or (spec.get("names") or {}).get("kind") != kind:
            continue
        for v in spec.get("versions") or []:
            if v.get("name") == version and v.get("served", True):
                return closed(copy.deepcopy((v.get("schema") or {}).get("openAPIV3Schema") or {}))
    return None


def _load_all(text: str) -> list[Any]:
    try:  # libyaml is ten times faster on multi-megabyte CRDs
        import yaml

        return list(yaml.load_all(text, Loader=yaml.CSafeLoader))
    except (ImportError, AttributeError):
        from ruamel.yaml import YAML

        return list(YAML(typ="safe").load_all(text))


def closed(node: Any) -> Any:
    """Refuse unknown fields, in place, as the API server's strict field validation does.

    Objects that declare `properties` get `additionalProperties: false` unless they say otherwise
    or carry x-kubernetes-preserve-unknown-fields; allOf/anyOf/oneOf branches only add value checks
    to fields declared outside them, so they are left alone.
    """
    if isinstance(node, dict):
        if ("properties" in node and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        for key in ("properties", "patternProperties", "definitions"):
            for child in (node.get(key) or {}).values():
                closed(child)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                closed(node[key])
    return node


def validator(schema: dict):
    from jsonschema import Draft7Validator

    return Draft7Validator(schema)

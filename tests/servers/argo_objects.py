"""Object operations shared by both faces of the local Argo server (Argo Server REST and the
Kubernetes API): create (validated against the CRD and schema.json, 409 when the name is
taken), delete (with the owner-reference cascade Kubernetes' garbage collector does), merge
and JSON patches. Errors are :class:`ApiFailure`, which each face renders its own way."""

from __future__ import annotations

import copy
from typing import Any

from .argo_contract import KINDS, PLURALS, Problem, object_problems
from .argo_controller import resolve_spec

GROUPS = {"workflows": "argoproj.io", "workflowtemplates": "argoproj.io", "jobsets": "jobset.x-k8s.io"}


class ApiFailure(Exception):
    """An API error: HTTP ``status``, Kubernetes ``reason`` and the message."""

    def __init__(self, status: int, reason: str, message: str, *, name: str | None = None,
                 plural: str | None = None, causes: list[dict] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.name, self.plural, self.causes = name, plural, causes

    def k8s_status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason, "code": self.status}
        if self.name or self.plural:
            details: dict[str, Any] = {"name": self.name or "", "kind": self.plural or ""}
            if self.plural in GROUPS:
                details["group"] = GROUPS[self.plural]
            if self.causes:
                details["causes"] = self.causes
            body["details"] = details
        return body


def not_found(plural: str, name: str) -> ApiFailure:
    resource = f"{plural}.{GROUPS[plural]}" if plural in GROUPS else plural
    return ApiFailure(404, "NotFound", f'{resource} "{name}" not found', name=name, plural=plural)


def invalid(kind: str, plural: str, name: str, problems: list[Problem]) -> ApiFailure:
    group = GROUPS[plural]
    unknown = [p for p in problems if p.message.startswith("unknown field")]
    if unknown and len(unknown) == len(problems):
        text = ", ".join(p.message for p in unknown)
        return ApiFailure(400, "BadRequest", f"{kind} in version \"{KINDS[kind][1].split('/')[1]}\" cannot be "
                                             f"handled as a {kind}: strict decoding error: {text}",
                          name=name, plural=plural,
                          causes=[{"reason": "FieldValueInvalid", "message": p.message, "field": p.path}
                                  for p in unknown])
    shown = [str(p) for p in problems]
    listing = shown[0] if len(shown) == 1 else "[" + ", ".join(shown) + "]"
    return ApiFailure(422, "Invalid", f'{kind}.{group} "{name}" is invalid: {listing}', name=name, plural=plural,
                      causes=[{"reason": "FieldValueInvalid", "message": p.message, "field": p.path}
                              for p in problems])


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 (add, remove, replace, test, move, copy)."""
    if not isinstance(ops, list):
        raise ApiFailure(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)

    def walk(path: str):
        if not path.startswith("/"):
            raise ApiFailure(422, "Invalid", f"the server rejected our request: invalid JSON pointer {path!r}")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        return parent, parts[-1]

    for op in ops:
        try:
            kind = op["op"]
            if kind in ("move", "copy"):
                src_parent, src_key = walk(op["from"])
                value = src_parent[int(src_key)] if isinstance(src_parent, list) else src_parent[src_key]
                if kind == "move":
                    del src_parent[int(src_key) if isinstance(src_parent, list) else src_key]
                kind, op = "add", {"path": op["path"], "value": copy.deepcopy(value)}
            parent, key = walk(op["path"])
            if isinstance(parent, list):
                index = len(parent) if key == "-" else int(key)
                if kind == "add":
                    parent.insert(index, op["value"])
                elif kind == "remove":
                    del parent[index]
                elif kind == "replace":
                    parent[index] = op["value"]
                elif kind == "test" and parent[index] != op["value"]:
                    raise ApiFailure(422, "Invalid", f"the server rejected our request: test failed at {op['path']}")
            else:
                if kind in ("remove", "replace") and key not in parent:
                    raise ApiFailure(422, "Invalid", f"the server rejected our request due to an error in our "
                                                     f"request: missing path {op['path']}")
                if kind in ("add", "replace"):
                    parent[key] = op["value"]
                elif kind == "remove":
                    del parent[key]
                elif kind == "test" and parent.get(key) != op["value"]:
                    raise ApiFailure(422, "Invalid", f"the server rejected our request: test failed at {op['path']}")
        except (KeyError, IndexError, ValueError, TypeError) as err:
            raise ApiFailure(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                             f"{type(err).__name__} {err}") from None
    return doc


class ObjectOps:
    """Mixed into ArgoServer: needs ``self.store`` and ``self.controller``."""

    def create_object(self, plural: str, namespace: str, obj: Any, *, allow_existing: bool = False,
                      argo_checks: bool = False) -> dict:
        kind = PLURALS[plural]
        if not isinstance(obj, dict):
            raise ApiFailure(400, "BadRequest", f"the body of the request is not a {kind} object")
        obj = copy.deepcopy(obj)
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            if meta.get("namespace") not in (None, namespace):
                raise ApiFailure(400, "BadRequest", "the namespace of the provided object does not match the "
                                                    "namespace sent on the request")
            self.store.generated_name(meta)
        name = meta.get("name", "") if isinstance(meta, dict) else ""
        problems = object_problems(kind, obj)
        if problems:
            raise invalid(kind, plural, name, problems)
        if argo_checks:
            _, semantic = resolve_spec(self.store, namespace, obj)
            if semantic:
                raise ApiFailure(400, "BadRequest", "; ".join(semantic), name=name, plural=plural)
        existing = self.store.get(plural, namespace, name)
        if existing is not None:
            if allow_existing:
                return copy.deepcopy(existing)
            raise ApiFailure(409, "AlreadyExists", f'{plural}.{GROUPS[plural]} "{name}" already exists',
                             name=name, plural=plural)
        if plural in ("workflows", "jobsets"):
            obj.pop("status", None)
        stored = self.store.insert(plural, namespace, obj)
        if plural == "workflows":
            self.controller.start_workflow(namespace, name)
        elif plural == "jobsets":
            self.controller.start_jobset(namespace, name)
        return copy.deepcopy(stored)

    def delete_object(self, plural: str, namespace: str, name: str) -> dict | None:
        """Remove it; objects it owns go too (their processes are killed by their runners)."""
        obj = self.store.remove(plural, namespace, name)
        if obj is None:
            return None
        uid = obj["metadata"]["uid"]
        for (p, ns, other), child in list(self.store.objects.items()):
            if ns == namespace and any(ref.get("uid") == uid for ref in child["metadata"].get("ownerReferences") or []):
                self.delete_object(p, ns, other)
        if plural == "workflows":
            for key, pod in list(self.store.pods.items()):
                if pod.namespace == namespace and pod.workflow == name:
                    del self.store.pods[key]
        return obj

    def patch_object(self, plural: str, namespace: str, name: str, content_type: str, patch: Any) -> dict:
        kind = PLURALS[plural]
        current = self.store.get(plural, namespace, name)
        if current is None:
            raise not_found(plural, name)
        media = (content_type or "").split(";")[0].strip().lower()
        if media == "application/merge-patch+json":
            updated = merge_patch(current, patch)
        elif media == "application/json-patch+json":
            updated = json_patch(current, patch)
        else:
            raise ApiFailure(415, "UnsupportedMediaType",
                             f"the body of the request was in an unknown format - accepted media types include: "
                             f"application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                             f" (got {media or 'none'}; strategic merge patches do not apply to custom resources)")
        meta = updated.get("metadata") if isinstance(updated, dict) else None
        if not isinstance(meta, dict) or meta.get("name") != name or meta.get("namespace") != namespace \
                or meta.get("uid") != current["metadata"]["uid"]:
            raise ApiFailure(422, "Invalid", f'{kind}.{GROUPS[plural]} "{name}" is invalid: metadata: '
                                             "name, namespace and uid are immutable", name=name, plural=plural)
        if plural == "jobsets":  # status is a subresource: the main resource ignores it
            updated["status"] = copy.deepcopy(current.get("status"))
            if updated.get("status") is None:
                updated.pop("status")
        problems = object_problems(kind, updated)
        if problems:
            raise invalid(kind, plural, name, problems)
        if updated.get("spec") != current.get("spec"):
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        current.clear()
        current.update(updated)
        self.store.touch(current)
        return copy.deepcopy(current)

"""The GitHub REST contract the fake server enforces.

Loads the OpenAPI 3.0 description in ``../shared/contracts/github/rest-api.json`` (never a copy;
GitHub's description cut to the operations mlops-ci calls and a few it does not), matches requests
to operations, validates parameters, bodies and the server's own responses with
``jsonschema`` and builds schema-complete response skeletons that handlers fill in.

OpenAPI 3.0 is not JSON Schema: ``nullable: true`` becomes ``anyOf [schema, {"type": "null"}]``,
``$ref`` siblings are dropped (3.0 ignores them) and OpenAPI-only keywords are removed.
``oneOf`` is checked as ``anyOf``: several of the description's ``oneOf`` are ambiguous, so that
real GitHub traffic would fail them (``basic-error`` and ``repository-rule-violation-error`` have
no required fields, and every branch of ``validation-error``'s ``value`` accepts null).
"""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_PATH = (Path(__file__).resolve().parents[2].parent / "shared" / "contracts" / "github"
             / "rest-api.json")
_URI = "urn:github-rest"
_DROP = {"nullable", "discriminator", "example", "examples", "readOnly", "writeOnly", "xml",
         "externalDocs", "deprecated", "title", "description"}
# Path parameters whose values are git refs or file paths and so may contain "/".
_SLASHY = {"path", "ref", "branch", "base", "head"}
EPOCH = "1970-01-01T00:00:00Z"

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "T" not in value.upper():
        raise ValueError(f"{value!r} is not an ISO 8601 date-time")
    datetime.fromisoformat(value)
    return True


def to_json_schema(schema: Any) -> Any:
    """Convert one OpenAPI 3.0 schema object (recursively) to JSON Schema 2020-12."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return {"$ref": _URI + schema["$ref"]}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP or key.startswith("x-"):
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = to_json_schema(value)
        elif key in ("allOf", "anyOf"):
            out[key] = [to_json_schema(sub) for sub in value]
        elif key == "oneOf":  # see the module docstring
            out["anyOf"] = [to_json_schema(sub) for sub in value]
        else:
            out[key] = value
    if schema.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@dataclass
class Param:
    name: str
    where: str  # "path" or "query"
    required: bool
    schema: dict[str, Any]  # JSON Schema


@dataclass
class Operation:
    op_id: str
    method: str
    template: str
    docs_url: str
    params: list[Param]
    body_schema: dict[str, Any] | None
    body_required: bool
    responses: dict[int, dict[str, Any] | None]  # status -> JSON Schema of the JSON body
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        pattern = ""
        for part in re.split(r"(\{[^}]+\})", self.template):
            if part.startswith("{"):
                name = part[1:-1]
                pattern += (f"(?P<{name}>.*?)" if name == "path"  # "" lists the root
                            else f"(?P<{name}>.+?)" if name in _SLASHY else f"(?P<{name}>[^/]+)")
            else:
                pattern += re.escape(part)
        self.regex = re.compile(pattern + "$")

    @property
    def literal_length(self) -> int:
        return len(re.sub(r"\{[^}]+\}", "", self.template))


class ValidationFailed(Exception):
    """A request that breaks the contract: becomes a 422 with GitHub's error shape."""

    def __init__(self, message: str, errors: list[dict[str, Any]]):
        super().__init__(message)
        self.message = message
        self.errors = errors


class Contract:
    def __init__(self, spec_path: Path = SPEC_PATH):
        self.spec = json.loads(Path(spec_path).read_text())
        self.components = self.spec["components"]
        converted = {name: to_json_schema(s) for name, s in self.components["schemas"].items()}
        resource = DRAFT202012.create_resource({"components": {"schemas": converted}})
        self.registry: Registry = Registry().with_resource(_URI, resource)
        self.operations: list[Operation] = []
        for template, item in self.spec["paths"].items():
            shared = item.get("parameters", [])
            for method, op in item.items():
                if method == "parameters":
                    continue
                self.operations.append(self._operation(template, method, op, shared))
        self.operations.sort(key=lambda o: -o.literal_length)
        self.by_id = {o.op_id: o for o in self.operations}
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        self._skeletons: dict[str, Any] = {}

    # -- loading ------------------------------------------------------------------------------
    def resolve(self, obj: Any) -> Any:
        while isinstance(obj, dict) and "$ref" in obj:
            _, _, kind, name = obj["$ref"].split("/")
            obj = self.components[kind][name]
        return obj

    def _operation(self, template: str, method: str, op: dict, shared: list) -> Operation:
        params = []
        for raw in [*shared, *op.get("parameters", [])]:
            p = self.resolve(raw)
            if p["in"] in ("path", "query"):
                params.append(Param(p["name"], p["in"], p.get("required", False),
                                    to_json_schema(p.get("schema", {}))))
        body_schema, body_required = None, False
        if "requestBody" in op:
            body = self.resolve(op["requestBody"])
            body_required = body.get("required", False)
            media = body.get("content", {}).get("application/json")
            if media:
                body_schema = to_json_schema(media["schema"])
        responses: dict[int, dict | None] = {}
        for status, resp in op.get("responses", {}).items():
            media = self.resolve(resp).get("content", {}).get("application/json")
            responses[int(status)] = to_json_schema(media["schema"]) if media else None
        return Operation(op["operationId"], method.upper(), template,
                         op.get("externalDocs", {}).get("url", "https://docs.github.com/rest"),
                         params, body_schema, body_required, responses)

    # -- matching -----------------------------------------------------------------------------
    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation for ``method`` and the raw (still percent-encoded) ``path``."""
        for candidate in dict.fromkeys([path, path.rstrip("/") or "/"]):
            for op in self.operations:
                m = op.regex.match(candidate) if op.method == method else None
                if m:
                    return op, {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
        return None

    # -- validation ---------------------------------------------------------------------------
    def validator(self, key: str, schema: dict) -> jsonschema.protocols.Validator:
        if key not in self._validators:
            self._validators[key] = jsonschema.Draft202012Validator(
                schema, registry=self.registry, format_checker=FORMATS)
        return self._validators[key]

    def component_validator(self, name: str) -> jsonschema.protocols.Validator:
        return self.validator(f"#{name}", {"$ref": f"{_URI}#/components/schemas/{name}"})

    def check_request(self, op: Operation, path_params: dict[str, str],
                      query: dict[str, str], body: Any, has_body: bool) -> dict[str, Any]:
        """Coerce and validate parameters and body; returns the typed parameters.

        Raises :class:`ValidationFailed` listing every problem, as GitHub's 422 does."""
        errors: list[dict[str, Any]] = []
        typed: dict[str, Any] = {}
        for p in op.params:
            source = path_params if p.where == "path" else query
            if p.name not in source:
                if p.required:
                    errors.append({"resource": op.op_id, "field": p.name, "code": "missing_field",
                                   "message": f"{p.name} is required"})
                continue
            value = _coerce(source[p.name], p.schema)
            for err in self.validator(f"{op.op_id}:{p.name}", p.schema).iter_errors(value):
                errors.append({"resource": op.op_id, "field": p.name, "code": "invalid",
                               "message": f"{p.name}: {err.message}"})
            typed[p.name] = value
        if op.body_schema is not None and (has_body or op.body_required):
            validator = self.validator(f"{op.op_id}:body", op.body_schema)
            for err in sorted(validator.iter_errors(body), key=lambda e: list(e.path)):
                errors.extend(_body_errors(op, err))
        if errors:
            lines = [e["message"] for e in errors]
            raise ValidationFailed("Invalid request.\n\n" + "\n".join(lines), errors)
        return typed

    def check_response(self, op: Operation | None, status: int, body: Any) -> list[str]:
        """Problems with a response the server is about to send (empty when valid)."""
        if op is not None and status in op.responses:
            schema = op.responses[status]
            if schema is None:
                return []
            validator = self.validator(f"{op.op_id}:{status}", schema)
        elif status >= 400:
            validator = self.component_validator("validation-error" if status == 422
                                                 else "basic-error")
        else:
            return [f"status {status} is not a documented response of {op and op.op_id}"]
        where = f"{op.op_id if op else '-'} {status}"
        return [f"{where}: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:400]}"
                for e in validator.iter_errors(body)]

    # -- skeletons ----------------------------------------------------------------------------
    def build(self, name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """A minimal object of component ``name`` with every required field, then ``overrides``
        merged in (dicts recursively). Handlers set the fields that carry meaning."""
        if name not in self._skeletons:
            self._skeletons[name] = self._skeleton(self.components["schemas"][name], top=True)
        skeleton = copy.deepcopy(self._skeletons[name])
        return merge(skeleton, overrides) if overrides else skeleton

    def _skeleton(self, schema: Any, top: bool = False) -> Any:
        schema = self.resolve(schema)
        if schema.get("nullable") and not top:
            return None
        for combo in ("allOf", "oneOf", "anyOf"):
            if combo in schema:
                parts = schema[combo] if combo == "allOf" else schema[combo][:1]
                result: Any = None
                for part in parts:
                    value = self._skeleton(part, top=True)
                    result = merge(result, value) if isinstance(result, dict) else value
                return result
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type", "object" if "properties" in schema else None)
        if kind == "object":
            props = schema.get("properties", {})
            return {k: self._skeleton(props[k]) if k in props else None
                    for k in schema.get("required", [])}
        if kind == "array":
            return []
        if kind == "string":
            return EPOCH if schema.get("format") == "date-time" else ""
        if kind in ("integer", "number"):
            return 0
        if kind == "boolean":
            return False
        return None


def merge(base: Any, extra: dict[str, Any]) -> Any:
    """Merge ``extra`` into ``base`` in place: nested dicts merge, anything else replaces."""
    if not isinstance(base, dict):
        return copy.deepcopy(extra)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def _coerce(raw: str, schema: dict[str, Any]) -> Any:
    """A query/path string as the type its schema asks for (left as is when it does not parse)."""
    types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
    if "integer" in types and re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if "boolean" in types and raw in ("true", "false"):
        return raw == "true"
    return raw


def _body_errors(op: Operation, err: jsonschema.ValidationError) -> list[dict[str, Any]]:
    field_path = "/".join(map(str, err.absolute_path))
    if err.validator == "required" and isinstance(err.instance, dict):
        missing = [name for name in err.validator_value if name not in err.instance]
        return [{"resource": op.op_id, "field": "/".join(filter(None, [field_path, name])),
                 "code": "missing_field",
                 "message": f"For 'properties/{name}', it is required"} for name in missing]
    return [{"resource": op.op_id, "field": field_path or "body", "code": "invalid",
             "message": f"For '{field_path or 'body'}', {err.message[:300]}"}]

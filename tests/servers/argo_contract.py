"""The contracts the local Argo server enforces, read from ``../shared/contracts/`` at run time.

- the Argo Server REST API (``argo-workflows/swagger.json``): the operations served, the query
  parameters each accepts, the request body schema and the response schema;
- Workflow and WorkflowTemplate objects: the CRD's openAPIV3Schema (what the API server
  enforces) *and* ``schema.json``'s definition (what Argo's own validation reads), both with
  unknown fields rejected, plus the ObjectMeta rules the API server checks;
- JobSet objects: the JobSet CRD.

The CRD helpers (``closed``, ``contract_documents``, ``argo_json_validator``,
``metadata_problems``) are the ones tests/manifest_support.py validates argo/ and manifests/
with, so the server and the manifest tests agree on what "valid" means.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft4Validator, Draft7Validator
from manifest_support import (CONTRACTS, argo_json_validator, closed, contract_documents,
                                 metadata_problems)

SWAGGER = "argo-workflows/swagger.json"
WORKFLOW_CRD = "argo-workflows/argoproj.io_workflows.yaml"
TEMPLATE_CRD = "argo-workflows/argoproj.io_workflowtemplates.yaml"
JOBSET_CRD = "jobset/jobset.x-k8s.io_jobsets.yaml"

# kind -> (CRD file, apiVersion, plural, definition in schema.json or None)
KINDS = {
    "Workflow": (WORKFLOW_CRD, "argoproj.io/v1alpha1", "workflows",
                 "io.argoproj.workflow.v1alpha1.Workflow"),
    "WorkflowTemplate": (TEMPLATE_CRD, "argoproj.io/v1alpha1", "workflowtemplates",
                         "io.argoproj.workflow.v1alpha1.WorkflowTemplate"),
    "JobSet": (JOBSET_CRD, "jobset.x-k8s.io/v1alpha2", "jobsets", None),
}
PLURALS = {plural: kind for kind, (_, _, plural, _) in KINDS.items()}

# The Argo Server operations this server implements (operationId -> handler name).
REST_OPERATIONS = {
    "WorkflowService_CreateWorkflow": "create",
    "WorkflowService_GetWorkflow": "get",
    "WorkflowService_ListWorkflows": "list",
    "WorkflowService_StopWorkflow": "stop",
    "WorkflowService_DeleteWorkflow": "delete",
    "WorkflowService_WorkflowLogs": "logs",
}


@dataclass(frozen=True)
class Problem:
    path: str  # "spec.templates[0].container.image"
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def dotted(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problems(validator, obj: Any, prefix: tuple = ()) -> list[Problem]:
    found = []
    for err in validator.iter_errors(obj):
        where = (*prefix, *err.absolute_path)
        if err.validator == "additionalProperties":
            extra = re.findall(r"'([^']+)'", err.message.split("(")[-1])
            for name in extra or ["?"]:
                found.append(Problem(dotted((*where, name)), f'unknown field "{dotted((*where, name))}"'))
            continue
        if err.validator == "type":
            message = f"Invalid value: {json.dumps(err.instance)[:80]}: must be of type {err.validator_value}"
        elif err.validator == "required":
            message = f"Required value: {err.message}"
        elif err.validator == "enum":
            message = f"Unsupported value: {json.dumps(err.instance)[:80]}: supported values: {err.validator_value}"
        else:
            message = f"Invalid value: {err.message}"
        found.append(Problem(dotted(where), message))
    return found


# -- CRDs and schema.json -------------------------------------------------------------------
@functools.cache
def crd_validator(kind: str) -> Draft7Validator:
    """The served version's openAPIV3Schema of the CRD defining ``kind``, unknown fields closed."""
    path, api_version, _, _ = KINDS[kind]
    group, _, version = api_version.rpartition("/")
    for doc in contract_documents(path):
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition" \
                and doc["spec"]["names"]["kind"] == kind and doc["spec"]["group"] == group:
            for v in doc["spec"]["versions"]:
                if v["name"] == version and v.get("served"):
                    return Draft7Validator(closed(copy.deepcopy(v["schema"]["openAPIV3Schema"])))
    raise AssertionError(f"{path} serves no {kind} {api_version}")


def object_problems(kind: str, obj: Any) -> list[Problem]:
    """Why the API server (CRD schema, ObjectMeta) or Argo (schema.json) would refuse ``obj``."""
    if not isinstance(obj, dict):
        return [Problem("", f"a {kind} must be an object, not {type(obj).__name__}")]
    _, api_version, _, definition = KINDS[kind]
    found = []
    if obj.get("apiVersion") != api_version:
        found.append(Problem("apiVersion", f"Unsupported value: {obj.get('apiVersion')!r}: "
                                           f"supported values: {api_version!r}"))
    if obj.get("kind") != kind:
        found.append(Problem("kind", f"Unsupported value: {obj.get('kind')!r}: supported values: {kind!r}"))
    found += _problems(crd_validator(kind), obj)
    if definition:
        found += [p for p in _problems(argo_json_validator(definition), obj) if p not in found]
    found += [Problem("metadata", p) for p in metadata_problems(obj.get("metadata"))]
    return found


# -- swagger.json (Argo Server REST API) -----------------------------------------------------
@dataclass
class Operation:
    op_id: str
    method: str
    template: str
    regex: re.Pattern
    query: frozenset[str]
    body_ref: str | None
    response_ref: str | None


@functools.cache
def swagger() -> dict:
    return json.loads((CONTRACTS / SWAGGER).read_text(encoding="utf-8"))


@functools.cache
def operations() -> tuple[Operation, ...]:
    ops = []
    for template, item in swagger()["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or op.get("operationId") not in REST_OPERATIONS:
                continue
            params = op.get("parameters", [])
            body = next((p["schema"].get("$ref") for p in params if p["in"] == "body"), None)
            response = (op["responses"].get("200", {}).get("schema") or {}).get("$ref")
            regex = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")
            ops.append(Operation(op["operationId"], method.upper(), template, regex,
                                 frozenset(p["name"] for p in params if p["in"] == "query"), body, response))
    missing = set(REST_OPERATIONS) - {o.op_id for o in ops}
    assert not missing, f"{SWAGGER} lacks {sorted(missing)}"
    return tuple(ops)


def match_operation(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    for op in operations():
        m = op.regex.match(path)
        if m and op.method == method:
            return op, m.groupdict()
    return None


@functools.cache
def _swagger_validator(ref: str) -> Draft4Validator:
    doc = copy.deepcopy(swagger())
    for d in doc["definitions"].values():
        closed(d)
    return Draft4Validator({"definitions": doc["definitions"], "$ref": ref})


def swagger_problems(ref: str, body: Any, prefix: tuple = ()) -> list[Problem]:
    return _problems(_swagger_validator(ref), body, prefix)


def swagger_response_problems(op: Operation, body: Any) -> list[str]:
    if op.response_ref is None:
        return []
    return [f"{op.op_id} 200 response: {p}" for p in swagger_problems(op.response_ref, body)]

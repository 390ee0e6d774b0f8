"""The Argo Server REST face (``/api/v1/workflows/...``, per argo-workflows/swagger.json):
create, get, list, stop, delete and logs. Every request is matched to its swagger operation,
its query parameters and body are checked against it, and every answer is checked against the
operation's response schema (problems go to ``server.errors``). Errors are grpc-gateway bodies
``{"code": <gRPC code>, "message": ...}`` with the matching HTTP status."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from .argo_contract import match_operation, swagger_problems, swagger_response_problems
from .argo_objects import ApiFailure, not_found
from .argo_state import SelectorError, pick_fields

GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 412: 9, 415: 3, 422: 3, 500: 13, 503: 14, 504: 4}
DONE = ("Succeeded", "Failed", "Error")
UNAUTHENTICATED = "token not valid. see https://argo-workflows.readthedocs.io/en/latest/faq/"


def grpc_error(status: int, message: str) -> tuple[int, dict, dict]:
    http = 400 if status in (415, 422) else status
    return http, {"code": GRPC_CODES.get(status, 2), "message": message}, {}


class ArgoRestApi:
    """Mixed into ArgoServer."""

    def rest(self, method: str, path: str, query: dict[str, str], text: str, body: Any,
             headers) -> tuple[int, Any, dict]:
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if token not in (self.token, self.read_only_token) or not token:
            return grpc_error(401, UNAUTHENTICATED)
        found = match_operation(method, path)
        if found is None:
            return 404, {"code": 5, "message": "Not Found"}, {}
        op, params = found
        ns = params["namespace"]
        verb = {"create": "create", "get": "get", "list": "list", "stop": "update", "delete": "delete",
                "logs": "get"}[_handler(op.op_id)]
        if ns not in self.namespaces or (token == self.read_only_token and verb not in ("get", "list")):
            return grpc_error(403, f'workflows.argoproj.io is forbidden: User "system:serviceaccount:argo:'
                                   f'argo-server" cannot {verb} resource "workflows" in API group "argoproj.io" '
                                   f'in the namespace "{ns}"')
        unknown = sorted(set(query) - op.query)
        if unknown:
            self.errors.append(f"{method} {path}: query parameters {unknown} are not in {op.op_id}")
            return grpc_error(400, f"unknown query parameters {unknown} for {op.op_id}")
        if op.body_ref:
            if not isinstance(body, dict):
                return grpc_error(400, "invalid character in the request body: expected a JSON object")
            # the Workflow itself is checked by create_object (CRD + schema.json), with the API
            # server's messages; the envelope against swagger
            checked = {k: v for k, v in body.items() if k != "workflow"} if _handler(op.op_id) == "create" else body
            problems = swagger_problems(op.body_ref, checked)
            if problems:
                return grpc_error(400, "; ".join(str(p) for p in problems))
        try:
            with self.store.lock:
                status, answer = getattr(self, f"_rest_{_handler(op.op_id)}")(ns, params.get("name"), query, body)
        except ApiFailure as err:
            return grpc_error(err.status, err.message)
        except SelectorError as err:
            return grpc_error(400, str(err))
        if status == 200 and not query.get("fields") and not hasattr(answer, "__next__"):
            self.errors.extend(swagger_response_problems(op, answer))
        return status, answer, {}

    # -- operations -------------------------------------------------------------------------------
    def _rest_create(self, ns, _name, _query, body):
        wf = copy.deepcopy(body.get("workflow"))
        if not isinstance(wf, dict):
            raise ApiFailure(400, "BadRequest", "workflow is required")
        wf.setdefault("apiVersion", "argoproj.io/v1alpha1")
        wf.setdefault("kind", "Workflow")
        if body.get("serverDryRun"):
            raise NotImplementedError("serverDryRun")
        return 200, self.create_object("workflows", ns, wf, argo_checks=True)

    def _existing(self, ns, name):
        wf = self.store.get("workflows", ns, name)
        if wf is None:
            raise not_found("workflows", name)
        return wf

    def _rest_get(self, ns, name, query, _body):
        wf = copy.deepcopy(self._existing(ns, name))
        return 200, pick_fields(wf, query.get("fields"))

    def _rest_list(self, ns, _name, query, _body):
        items = copy.deepcopy(self.store.list("workflows", ns, query.get("listOptions.labelSelector")))
        prefix = query.get("nameFilter")
        if prefix:
            items = [w for w in items if w["metadata"]["name"].startswith(prefix)]
        doc = {"metadata": {"resourceVersion": self.store.resource_version()}, "items": items}
        fields = query.get("fields")
        if fields:
            paths = [p.strip() for p in fields.split(",") if p.strip()]
            keep_meta = any(p.lstrip("-") == "metadata" or p.lstrip("-").startswith("metadata.") for p in paths)
            doc = {"items": [pick_fields(w, fields, prefix="items.") for w in items],
                   **({"metadata": doc["metadata"]} if keep_meta else {})}
        return 200, doc

    def _rest_stop(self, ns, name, _query, body):
        wf = self._existing(ns, name)
        if (wf.get("status") or {}).get("phase") in DONE:
            raise ApiFailure(412, "Conflict", "cannot shutdown a completed workflow")
        wf["spec"]["shutdown"] = "Stop"
        self.store.touch(wf)
        return 200, copy.deepcopy(wf)

    def _rest_delete(self, ns, name, _query, _body):
        self._existing(ns, name)
        self.delete_object("workflows", ns, name)
        return 200, {}

    def _rest_logs(self, ns, name, query, _body):
        self._existing(ns, name)
        container = query.get("logOptions.container") or "main"
        follow = query.get("logOptions.follow") in ("true", "1", "True")
        pod_name, grep = query.get("podName"), query.get("grep")
        return 200, self._log_stream(ns, name, container, follow, pod_name, grep)

    def _log_stream(self, ns, name, container, follow, pod_name, grep):
        sent: dict[str, int] = {}
        while True:
            with self.store.lock:
                wf = self.store.get("workflows", ns, name)
                finished = wf is None or (wf.get("status") or {}).get("phase") in DONE
                pods = sorted((p for p in self.store.pods.values() if p.namespace == ns and p.workflow == name
                               and (pod_name is None or p.name == pod_name)), key=lambda p: (p.created, p.name))
                batch = []
                for pod in pods:
                    lines = pod.log if container == "main" else []
                    batch += [(pod.name, line) for line in lines[sent.get(pod.name, 0):]]
                    sent[pod.name] = len(lines)
            for pod, line in batch:
                if grep is None or grep in line:
                    yield json.dumps({"result": {"content": line, "podName": pod}}) + "\n"
            if not follow or (finished and not batch):
                return
            time.sleep(0.1)


def _handler(op_id: str) -> str:
    from .argo_contract import REST_OPERATIONS

    return REST_OPERATIONS[op_id]

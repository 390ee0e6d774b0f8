"""The Kubernetes API face of the local Argo server: what ``kubernetes.client.CustomObjectsApi``
and ``CoreV1Api`` send. Custom objects (create, get, list with ``labelSelector``, merge and
JSON patches, delete) for ``argoproj.io/v1alpha1`` workflows (workflowtemplates: read only) and
``jobset.x-k8s.io/v1alpha2`` jobsets; pods (list, get) and their logs. Errors and unknown paths
answer a ``Status`` object as the API server does. Objects are validated against their CRD
(unknown fields refused, as with ``fieldValidation=Strict``); Argo's own checks (the template
exists, parameters satisfy it) happen in the controller, which fails such a Workflow with
``invalid spec: ...`` as Argo's controller does."""

from __future__ import annotations

import copy
import re
from typing import Any

from .argo_contract import KINDS, PLURALS
from .argo_objects import ApiFailure, not_found
from .argo_state import SelectorError

CUSTOM = re.compile(r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)"
                    r"(?:/(?P<name>[^/]+))?$")
PODS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods(?:/(?P<name>[^/]+)(?P<log>/log)?)?$")
SERVED = {("argoproj.io", "v1alpha1", "workflows"): "GET POST PATCH DELETE",
          ("argoproj.io", "v1alpha1", "workflowtemplates"): "GET",
          ("jobset.x-k8s.io", "v1alpha2", "jobsets"): "GET POST PATCH DELETE"}


def status(code: int, reason: str, message: str) -> tuple[int, dict, dict]:
    return code, ApiFailure(code, reason, message).k8s_status(), {}


class KubernetesApi:
    """Mixed into ArgoServer."""

    def k8s(self, method: str, path: str, query: dict[str, str], text: str, body: Any,
            headers) -> tuple[int, Any, dict]:
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if not token or token not in (self.token, self.read_only_token):
            return status(401, "Unauthorized", "Unauthorized")
        custom, pods = CUSTOM.match(path), PODS.match(path)
        match = custom or pods
        if match is None:
            return status(404, "NotFound", "the server could not find the requested resource")
        if custom:
            key = (custom["group"], custom["version"], custom["plural"])
            if key not in SERVED:
                return status(404, "NotFound", "the server could not find the requested resource")
            if method not in SERVED[key].split() or (method == "POST" and custom["name"]) or \
                    (method in ("PATCH", "DELETE") and not custom["name"]):
                return status(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                       "resource")
            resource, group = custom["plural"], f'{custom["plural"]}.{custom["group"]}'
        else:
            if method != "GET":
                return status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            resource, group = "pods", "pods"
        ns = match["ns"]
        verb = {"GET": "get" if match["name"] else "list", "POST": "create", "PATCH": "patch",
                "DELETE": "delete"}[method]
        if ns not in self.namespaces or (token == self.read_only_token and method != "GET"):
            return status(403, "Forbidden", f'{group} is forbidden: User "system:serviceaccount:{self.namespace}:'
                                            f'mlops-ci" cannot {verb} resource "{resource}" in API group '
                                            f'"{custom["group"] if custom else ""}" in the namespace "{ns}"')
        if query.get("watch") in ("true", "1"):
            self.errors.append(f"{method} {path}: watch is not implemented by the local Kubernetes API")
            return status(400, "BadRequest", "watch is not implemented by the local Kubernetes API")
        try:
            with self.store.lock:
                if pods:
                    return self._k8s_pods(ns, match["name"], bool(match["log"]), query)
                return self._k8s_custom(method, custom["plural"], ns, custom["name"], query, body,
                                        headers.get("Content-Type", ""))
        except ApiFailure as err:
            return err.status, err.k8s_status(), {}
        except SelectorError as err:
            return status(400, "BadRequest", f"unable to parse requirement: {err}")

    def _k8s_custom(self, method, plural, ns, name, query, body, content_type):
        kind = PLURALS[plural]
        api_version = KINDS[kind][1]
        if method == "POST":
            if query.get("dryRun"):
                raise ApiFailure(400, "BadRequest", "dryRun is not implemented by the local Kubernetes API")
            if isinstance(body, dict) and (body.get("apiVersion"), body.get("kind")) != (api_version, kind):
                raise ApiFailure(400, "BadRequest", f"the API version in the data ({body.get('apiVersion')}) "
                                                    f"does not match the expected API version ({api_version})"
                                 if body.get("apiVersion") != api_version else
                                 f"the kind in the data ({body.get('kind')}) does not match {kind}")
            return 201, self.create_object(plural, ns, body), {}
        if method == "GET" and name is None:
            items = self.store.list(plural, ns, query.get("labelSelector"))
            field = query.get("fieldSelector")
            if field:
                m = re.fullmatch(r"metadata\.name=(==)?(.+)", field)
                if not m:
                    raise ApiFailure(400, "BadRequest", f'"{field}" is not a known field selector: only '
                                                        '"metadata.name", "metadata.namespace"')
                items = [i for i in items if i["metadata"]["name"] == m.group(2)]
            return 200, {"apiVersion": api_version, "kind": f"{kind}List", "items": copy.deepcopy(items),
                         "metadata": {"resourceVersion": self.store.resource_version()}}, {}
        if method == "GET":
            obj = self.store.get(plural, ns, name)
            if obj is None:
                raise not_found(plural, name)
            return 200, copy.deepcopy(obj), {}
        if method == "PATCH":
            return 200, self.patch_object(plural, ns, name, content_type, body), {}
        obj = self.delete_object(plural, ns, name)
        if obj is None:
            raise not_found(plural, name)
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": {"name": name, "group": api_version.split("/")[0], "kind": plural,
                                 "uid": obj["metadata"]["uid"]}}, {}

    def _k8s_pods(self, ns, name, log, query):
        if name is None:
            from .argo_state import parse_selector, selector_matches

            requirements = parse_selector(query.get("labelSelector") or "")
            items = [p.manifest() for p in sorted(self.store.pods.values(), key=lambda p: p.name)
                     if p.namespace == ns and selector_matches(requirements, p.labels)]
            return 200, {"apiVersion": "v1", "kind": "PodList", "items": items,
                         "metadata": {"resourceVersion": self.store.resource_version()}}, {}
        pod = self.store.pods.get((ns, name))
        if pod is None:
            raise not_found("pods", name)
        if not log:
            return 200, pod.manifest(), {}
        container = query.get("container")
        if container is None and len(pod.containers) > 1:
            raise ApiFailure(400, "BadRequest", f"a container name must be specified for pod {name}, choose one "
                                                f"of: [{' '.join(pod.containers)}]")
        container = container or pod.containers[0]
        if container not in pod.containers:
            raise ApiFailure(400, "BadRequest", f"container {container} is not valid for pod {name}")
        main = "main" if pod.workflow else pod.containers[0]
        lines = list(pod.log) if container == main else []
        if query.get("tailLines"):
            lines = lines[-int(query["tailLines"]):]
        return 200, "".join(line + "\n" for line in lines), {"Content-Type": "text/plain"}

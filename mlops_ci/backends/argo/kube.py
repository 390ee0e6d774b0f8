"""The Kubernetes API transport: Workflows as custom objects (``argoproj.io/v1alpha1``).

Uses the ``kubernetes`` client's CustomObjectsApi (and CoreV1Api for pod logs) with plain
dicts, so it needs no Argo SDK. Credentials come from the kubeconfig (``KUBECONFIG``, an
optional context), from the pod's service account when running in a cluster, or from an
explicit API URL and ``ARGO_TOKEN``. Stopping is what ``argo stop`` does: a merge patch
``spec.shutdown: Stop``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlops_ci.backends.argo.base import (GROUP, PLURAL, RETRYABLE_STATUS, TOKEN_ENV, VERSION, AlreadyExists,
                                         TransportError, bearer, label_selector, pick)

REQUEST_TIMEOUT = (10, 30)
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"  # the label Argo puts on a Workflow's pods


class KubernetesTransport:
    name = "kubernetes"

    def __init__(self, namespace: str, *, host: str | None = None, token: str | None = None,
                 ca_file: str | None = None, insecure_skip_tls_verify: bool = False, kubeconfig: str | None = None,
                 context: str | None = None, env: Mapping[str, str] | None = None) -> None:
        from kubernetes import client, config

        env = os.environ if env is None else env
        self.namespace = namespace
        if host:
            cfg = client.Configuration()
            cfg.host = host.rstrip("/")
            token = token if token is not None else env.get(TOKEN_ENV, "")
            if token:
                cfg.api_key = {"authorization": bearer(token)}
            cfg.verify_ssl = not insecure_skip_tls_verify
            if ca_file:
                cfg.ssl_ca_cert = ca_file
            api = client.ApiClient(cfg)
        else:
            try:
                if env.get("KUBERNETES_SERVICE_HOST") and not kubeconfig:
                    config.load_incluster_config()
                else:
                    config.load_kube_config(config_file=kubeconfig, context=context)
            except Exception as err:  # the loaders raise ConfigException, FileNotFoundError, ...
                raise TransportError(f"cannot load Kubernetes credentials: {err}",
                                     hint="set KUBECONFIG (and argo.context), or run inside the cluster") from err
            api = client.ApiClient()
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def _call(self, what: str, fn, *args: Any, **kwargs: Any):
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except ApiException as err:
            status = err.status or 0
            message = _status_message(err)
            if status == 409:
                raise AlreadyExists(f"Kubernetes API {what}: {message}", status=409) from err
            hint = {401: "the credentials were refused: check the kubeconfig or ARGO_TOKEN",
                    403: "the service account may not do this: see argo/rbac.yaml"}.get(status)
            raise TransportError(f"Kubernetes API {what} answered {status}: {message}", status=status or None,
                                 retryable=status in RETRYABLE_STATUS or status == 0, hint=hint) from err
        except (HTTPError, OSError) as err:
            raise TransportError(f"Kubernetes API {what}: {type(err).__name__}", retryable=True,
                                 hint="check that the API server is reachable") from err

    def create(self, workflow: dict[str, Any]) -> dict[str, Any]:
        return self._call(f"create workflow in {self.namespace}", self.custom.create_namespaced_custom_object,
                          GROUP, VERSION, self.namespace, PLURAL, workflow)

    def get(self, name: str, fields: Sequence[str] | None = None) -> dict[str, Any] | None:
        try:
            doc = self._call(f"get workflow {self.namespace}/{name}", self.custom.get_namespaced_custom_object,
                             GROUP, VERSION, self.namespace, PLURAL, name)
        except TransportError as err:
            if err.status == 404:
                return None
            raise
        return pick(doc, fields) if fields else doc

    def list(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        found = self._call(f"list workflows in {self.namespace}", self.custom.list_namespaced_custom_object,
                           GROUP, VERSION, self.namespace, PLURAL, label_selector=label_selector(labels))
        keep = ("metadata.name", "metadata.labels", "status.phase", "status.message")
        return [pick(item, keep) for item in found.get("items") or []]

    def stop(self, name: str, message: str | None = None) -> None:
        self._call(f"stop workflow {self.namespace}/{name}", self.custom.patch_namespaced_custom_object,
                   GROUP, VERSION, self.namespace, PLURAL, name, {"spec": {"shutdown": "Stop"}})

    def logs(self, name: str) -> Iterator[str]:
        pods = self._call(f"list pods of workflow {self.namespace}/{name}", self.core.list_namespaced_pod,
                          self.namespace, label_selector=f"{WORKFLOW_LABEL}={name}")
        for pod in sorted(p.metadata.name for p in pods.items or []):
            try:
                text = self._call(f"logs of pod {self.namespace}/{pod}", self.core.read_namespaced_pod_log,
                                  pod, self.namespace, container="main")
            except TransportError as err:
                if err.status in (400, 404):  # garbage-collected, or not started yet
                    continue
                raise
            yield from str(text or "").splitlines()

    def ui_url(self, name: str) -> str | None:
        return None


def _status_message(err) -> str:
    import json

    try:
        body = json.loads(err.body or "{}")
    except (TypeError, ValueError):
        return str(err.reason or err.body or "")[:300]
    return str(body.get("message") or err.reason or "")[:300]

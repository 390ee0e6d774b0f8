"""The Argo Server REST transport (``/api/v1/workflows/...``) over ``requests``.

Authentication is a bearer token from ``ARGO_TOKEN`` (never from the config, never logged);
TLS is verified against the system store, ``ca_file``, or not at all with
``insecure_skip_tls_verify`` (for a port-forward to a self-signed server). Every call has a
connect and a read timeout; failures become :class:`TransportError` with ``retryable`` set for
the ones worth riding out (dropped connections, timeouts, 5xx, 429).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from mlops_ci.backends.argo.base import RETRYABLE_STATUS, TOKEN_ENV, AlreadyExists, TransportError, bearer, label_selector

TIMEOUT = (10.0, 30.0)  # connect, read (seconds)


class ArgoServerTransport:
    name = "server"

    def __init__(self, url: str, namespace: str, *, token: str | None = None, ca_file: str | None = None,
                 insecure_skip_tls_verify: bool = False, env: Mapping[str, str] | None = None,
                 timeout: tuple[float, float] = TIMEOUT) -> None:
        import requests

        env = os.environ if env is None else env
        self.url = url.rstrip("/")
        self.namespace = namespace
        self.timeout = timeout
        self.session = requests.Session()
        token = token if token is not None else env.get(TOKEN_ENV, "")
        if token:
            self.session.headers["Authorization"] = bearer(token)
        self.session.headers["Accept"] = "application/json"
        self.session.verify = False if insecure_skip_tls_verify else (ca_file or True)

    # -- plumbing --------------------------------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return "/".join([self.url, "api/v1/workflows", quote(self.namespace, safe=""),
                         *(quote(p, safe="") for p in parts)])

    def _call(self, method: str, url: str, **kwargs: Any):
        import requests

        try:
            resp = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
            # ChunkedEncodingError: the connection closed halfway through the answer
            raise TransportError(f"Argo Server {method} {url}: {type(err).__name__}", retryable=True,
                                 hint="check argo.server_url and that the Argo Server is reachable") from err
        except requests.RequestException as err:
            raise TransportError(f"Argo Server {method} {url}: {err}") from err
        if resp.status_code >= 400:
            message = _error_message(resp)
            status = resp.status_code
            if status == 409:
                raise AlreadyExists(f"Argo Server {method} {url}: {message}", status=409)
            hint = {401: "set ARGO_TOKEN to a valid token (argo auth token)",
                    403: "the token's service account may not do this in that namespace"}.get(status)
            raise TransportError(f"Argo Server {method} {url} answered {status}: {message}", status=status,
                                 retryable=status in RETRYABLE_STATUS, hint=hint)
        return resp

    # -- the role --------------------------------------------------------------------------------
    def create(self, workflow: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", self._path(), json={"namespace": self.namespace, "workflow": workflow}).json()

    def get(self, name: str, fields: Sequence[str] | None = None) -> dict[str, Any] | None:
        params = {"fields": ",".join(fields)} if fields else None
        try:
            return self._call("GET", self._path(name), params=params).json()
        except TransportError as err:
            if err.status == 404:
                return None
            raise

    def list(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        params = {"listOptions.labelSelector": label_selector(labels),
                  "fields": "items.metadata.name,items.metadata.labels,items.status.phase,items.status.message"}
        return self._call("GET", self._path(), params=params).json().get("items") or []

    def stop(self, name: str, message: str | None = None) -> None:
        body: dict[str, Any] = {"name": name, "namespace": self.namespace}
        if message:
            body["message"] = message
        self._call("PUT", self._path(name, "stop"), json=body)

    def logs(self, name: str) -> Iterator[str]:
        import requests

        url = self._path(name, "log")
        resp = self._call("GET", url, params={"logOptions.container": "main"}, stream=True)
        with resp:
            try:
                for raw in resp.iter_lines(decode_unicode=True):
                    if not raw:
                        continue
                    try:
                        content = (json.loads(raw).get("result") or {}).get("content")
                    except (ValueError, AttributeError):
                        continue  # a line that is not a log entry (a keep-alive, an error object)
                    if content is not None:
                        yield from str(content).splitlines() or [""]
            except requests.RequestException as err:  # the stream broke off halfway
                raise TransportError(f"Argo Server GET {url}: {type(err).__name__}", retryable=True,
                                     hint="check argo.server_url and that the Argo Server is reachable") from err

    def ui_url(self, name: str) -> str:
        return f"{self.url}/workflows/{quote(self.namespace, safe='')}/{quote(name, safe='')}"


def _error_message(resp) -> str:
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or resp.reason or "").strip()[:300]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:300]
    return str(body)[:300]

"""Prometheus's HTTP API (``GET /api/v1/query``, an instant query at a given time) over ``requests``.

Authentication is a bearer token from ``PROMETHEUS_TOKEN`` (never from the config, never in a
message); TLS is verified against the system store, ``ca_file``, or not at all with
``insecure_skip_tls_verify``. Every call has a connect and a read timeout. Failures become
:class:`PrometheusError`: ``retryable`` for what a later analysis may not meet again (a dropped
connection, a timeout, a 5xx, a 429), final for a query Prometheus refuses (its message kept).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mlops_ci.errors import BackendError

TOKEN_ENV = "PROMETHEUS_TOKEN"
TIMEOUT = (10.0, 30.0)  # connect, read (seconds)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MESSAGE_CHARS = 300

Sample = tuple[dict[str, str], float]


class PrometheusError(BackendError):
    """A query got no usable answer. ``status``: the HTTP status, if one came back; ``error_type``:
    Prometheus's (``bad_data`` for a query it cannot parse, ``timeout``, ``execution`` ...)."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None,
                 retryable: bool = False, error_type: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retryable = retryable
        self.error_type = error_type


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 3] + "..."


def _number(value: Any) -> float:
    """A sample's value as Prometheus writes it (a string: "1.5", "NaN", "+Inf")."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PrometheusError(f"Prometheus answered a value that is not a number: {_short(repr(value))}") from None


class PrometheusClient:
    def __init__(self, url: str, *, token: str | None = None, ca_file: str | None = None,
                 insecure_skip_tls_verify: bool = False, env: Mapping[str, str] | None = None,
                 timeout: tuple[float, float] = TIMEOUT, session: Any = None) -> None:
        import requests

        env = os.environ if env is None else env
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session if session is not None else requests.Session()
        token = token if token is not None else env.get(TOKEN_ENV, "")
        if token:
            self.session.headers["Authorization"] = token if token.lower().startswith("bearer ") else f"Bearer {token}"
        self.session.headers["Accept"] = "application/json"
        self.session.verify = False if insecure_skip_tls_verify else (ca_file or True)

    def __repr__(self) -> str:  # the session's headers hold the token: never in a repr
        return f"PrometheusClient({self.url!r})"

    @classmethod
    def from_config(cls, cfg: Any, env: Mapping[str, str] | None = None) -> PrometheusClient:
        """From an ``analysis.prometheus`` section (mlops_ci.config.analysis.PrometheusAnalysis)."""
        return cls(cfg.url, ca_file=cfg.ca_file, insecure_skip_tls_verify=cfg.insecure_skip_tls_verify, env=env,
                   timeout=(min(10.0, cfg.timeout_s), cfg.timeout_s))

    def query(self, expr: str, at: datetime | float | None = None) -> list[Sample]:
        """The answer of ``expr`` evaluated at ``at`` (default: now): one (labels, value) per series
        of a vector; a scalar as one sample without labels. NaN and ±Inf are kept as floats: what
        they mean is the caller's to decide."""
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at.timestamp() if isinstance(at, datetime) else float(at):.3f}"
        if self.timeout[1]:
            params["timeout"] = f"{self.timeout[1]:g}s"  # the server gives up first, with a message
        data = self._get("/api/v1/query", params)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector" and isinstance(result, list):
            out = []
            for item in result:
                pair = item.get("value") if isinstance(item, dict) else None
                if not isinstance(pair, list) or len(pair) != 2:
                    raise PrometheusError(f"Prometheus answered a malformed sample: {_short(repr(item))}")
                labels = item.get("metric") or {}
                out.append(({str(k): str(v) for k, v in labels.items()}, _number(pair[1])))
            return out
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return [({}, _number(result[1]))]
        raise PrometheusError(f"Prometheus answered a {kind or 'malformed'} result where one number per series "
                              "was expected", hint="write the query as an instant vector or a scalar "
                              "(no range selector [..] at its outside)")

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        import requests

        url = self.url + path
        try:
            resp = self.session.get(url, params=params, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
            raise PrometheusError(f"Prometheus at {self.url} is unreachable: {type(err).__name__}", retryable=True,
                                  hint="check analysis.prometheus.url and that Prometheus is reachable from "
                                  "this job") from err
        except requests.RequestException as err:
            raise PrometheusError(f"Prometheus GET {url}: {type(err).__name__}") from err
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            status = resp.status_code
            raise PrometheusError(f"Prometheus GET {url} answered {status}: {_short(resp.text or resp.reason or '')}",
                                  status=status, retryable=status in RETRYABLE_STATUS,
                                  hint=_HINTS.get(status))
        if body.get("status") != "success" or resp.status_code >= 400:
            status = resp.status_code
            kind = body.get("errorType")
            message = _short(body.get("error") or body)
            raise PrometheusError(f"Prometheus refused the query ({kind or status}): {message}", status=status,
                                  error_type=kind, hint=_HINTS.get(status),
                                  retryable=status in RETRYABLE_STATUS or kind in ("timeout", "unavailable"))
        data = body.get("data")
        if not isinstance(data, dict):
            raise PrometheusError(f"Prometheus GET {url} answered no data", status=resp.status_code)
        return data


_HINTS = {401: f"set {TOKEN_ENV} to a token Prometheus accepts",
          403: f"the token in {TOKEN_ENV} may not query this Prometheus"}


__all__ = ["TOKEN_ENV", "PrometheusClient", "PrometheusError", "Sample"]

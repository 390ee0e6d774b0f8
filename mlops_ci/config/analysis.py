"""`analysis.prometheus`: how a rollout step's canary is compared with the primary in Prometheus.

    analysis:
      prometheus:
        url: http://prometheus.monitoring:9090
        version_label: mlops_ci_dev_model_version
        thresholds:
          error_rate: {max_ratio: 2.0, max: 0.05}
          latency_p99: {max_ratio: 1.5}
        min_requests: 50

Each measure is one PromQL template per side, asked at the end of the soak window. The default
templates follow KServe's deployment mode: Serverless reads Knative's queue-proxy
(``revision_app_request_count``, ``revision_app_request_latencies_bucket``), RawDeployment the
model server's own REST metrics (MLServer's ``rest_server_requests_total`` and
``rest_server_request_duration_seconds_bucket``; gRPC traffic is not in them). Both tell the sides
apart by the pod label ``mlops-ci.dev/model-version``, which the usual kubernetes_sd relabelling
(``labelmap: __meta_kubernetes_pod_label_(.+)``) turns into ``mlops_ci_dev_model_version``;
RawDeployment finds the InferenceService by KServe's pod label (``serving_kserve_io_inferenceservice``)
and the namespace by the scrape's ``namespace`` label.

A template's placeholders are ``{namespace}``, ``{name}`` (the InferenceService), ``{version}``
(the side's model version), ``{version_label}`` and ``{window}`` (a PromQL duration, ``300s``);
PromQL's own braces (``metric{job="x"}``) are left as they are.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mlops_ci.config.base import Strict

PLACEHOLDERS = ("namespace", "name", "version", "version_label", "window")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_VALUE = re.compile(r"^[A-Za-z0-9._-]{1,253}$")  # what may be put between a matcher's quotes
_WINDOW = re.compile(r"^[1-9][0-9]*s$")
MEASURES = ("requests", "error_rate", "latency_p99")
TOKEN_ENV = "PROMETHEUS_TOKEN"
DeploymentMode = Literal["Serverless", "RawDeployment"]

_KNATIVE = ('namespace_name="{namespace}", service_name=~"{name}-predictor(-default)?", '
            '{version_label}="{version}"')
_MLSERVER = ('namespace="{namespace}", serving_kserve_io_inferenceservice="{name}", {version_label}="{version}", '
             'path=~"/v2/models/[^/]+(/versions/[^/]+)?/infer"')
# `or vector(0)`: a side that answered no 5xx at all has no error series, and 0 errors is an answer
DEFAULT_QUERIES: dict[str, dict[str, str]] = {
    "Serverless": {
        "requests": f"sum(increase(revision_app_request_count{{{_KNATIVE}}}[{{window}}]))",
        "error_rate": (f'(sum(increase(revision_app_request_count{{{_KNATIVE}, response_code_class="5xx"}}'
                       f"[{{window}}])) or vector(0)) / sum(increase(revision_app_request_count{{{_KNATIVE}}}"
                       "[{window}]))"),
        # Knative's latencies are in milliseconds; every measure here is in seconds
        "latency_p99": (f"histogram_quantile(0.99, sum by (le) (rate(revision_app_request_latencies_bucket"
                        f"{{{_KNATIVE}}}[{{window}}]))) / 1000"),
    },
    "RawDeployment": {
        "requests": f"sum(increase(rest_server_requests_total{{{_MLSERVER}}}[{{window}}]))",
        "error_rate": (f'(sum(increase(rest_server_requests_total{{{_MLSERVER}, status_code=~"5.."}}'
                       f"[{{window}}])) or vector(0)) / sum(increase(rest_server_requests_total{{{_MLSERVER}}}"
                       "[{window}]))"),
        "latency_p99": (f"histogram_quantile(0.99, sum by (le) (rate(rest_server_request_duration_seconds_bucket"
                        f"{{{_MLSERVER}}}[{{window}}])))"),
    },
}


def placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER.findall(template))


def render(template: str, **values: str) -> str:
    """``template`` with its placeholders replaced; every value must be plain (letters, digits,
    '.', '_', '-'), so that nothing substituted can change the query around it."""
    for key, value in values.items():
        pattern = _WINDOW if key == "window" else _LABEL_NAME if key == "version_label" else _VALUE
        if not pattern.fullmatch(str(value)):
            raise ValueError(f"{key} {value!r} cannot be put into a PromQL query")
    return _PLACEHOLDER.sub(lambda m: str(values.get(m[1], m[0])), template)


class Queries(Strict):
    """PromQL templates that replace the mode's defaults, one per measure (all answer one number)."""

    requests: str | None = Field(default=None, description="requests one side answered over the window")
    error_rate: str | None = Field(default=None, description="share of one side's requests that failed "
                                   "(0.05 is 5%)")
    latency_p99: str | None = Field(default=None, description="one side's 99th percentile latency, in seconds")

    @field_validator("*")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return value
        unknown = sorted(placeholders(value) - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}: a template may use "
                             + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))
        if "version" not in placeholders(value):
            raise ValueError("the template has no {version}: it would ask the same of the canary and the primary")
        return value


class Limit(Strict):
    """When the canary's value of one measure fails it: above ``max``, or above ``max_ratio`` times
    the primary's. Either may be null (not checked); not both."""

    max: float | None = Field(default=None, ge=0, description="the canary fails above this value, whatever "
                              "the primary does")
    max_ratio: float | None = Field(default=None, ge=1, description="the canary fails above this many times "
                                    "the primary's value")
    ratio_floor: float = Field(default=0.0, ge=0, description="the primary's value counts as at least this in "
                               "the ratio, so that a primary near 0 does not turn noise into a large ratio. "
                               "A primary at 0 with a floor of 0: the ratio is not used and max decides")

    @model_validator(mode="after")
    def _something(self) -> Limit:
        if self.max is None and self.max_ratio is None:
            raise ValueError("set max, max_ratio or both; to stop grading a measure, write it as null")
        return self


_ERROR_RATE = Limit(max=0.05, max_ratio=2.0, ratio_floor=0.01)
_LATENCY = Limit(max_ratio=1.5, ratio_floor=0.01)


class Thresholds(Strict):
    """A limit given in part keeps the default's other keys; null turns a measure off."""

    error_rate: Limit | None = Field(default=_ERROR_RATE, description="share of failed (5xx) requests: max 0.05 "
                                     "(5%), max_ratio 2.0, ratio_floor 0.01 (1%) unless set")
    latency_p99: Limit | None = Field(default=_LATENCY, description="99th percentile latency in seconds: "
                                      "max_ratio 1.5, ratio_floor 0.01 (10 ms) unless set")

    @field_validator("*", mode="before")
    @classmethod
    def _partial(cls, value: Any, info: ValidationInfo) -> Any:
        default = {"error_rate": _ERROR_RATE, "latency_p99": _LATENCY}[info.field_name]
        if isinstance(value, dict):
            return {**default.model_dump(), **value}
        return value

    @field_validator("error_rate")
    @classmethod
    def _share(cls, value: Limit | None) -> Limit | None:
        if value is not None and (value.max or 0) > 1:
            raise ValueError(f"error_rate.max is a share of the requests: 0.05 is 5%, not {value.max:g}")
        return value


def _http_url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s):// URL of a Prometheus server")
    if parts.username or parts.password:
        raise ValueError("the URL carries credentials (not shown): remove them and set PROMETHEUS_TOKEN")
    return value.rstrip("/")


class PrometheusAnalysis(Strict):
    """Prometheus, asked how the canary and the primary did over a rollout step's soak.

    The bearer token (if Prometheus wants one) is read from PROMETHEUS_TOKEN, never from this file.
    """

    url: str = Field(description="the Prometheus server (http://prometheus.monitoring:9090, or https://); "
                     "/api/v1/query is asked under it")
    ca_file: str | None = Field(default=None, description="CA bundle that signed the server's certificate")
    insecure_skip_tls_verify: bool = Field(default=False, description="do not verify the server's TLS "
                                           "certificate (a port-forward to a self-signed server only)")
    timeout_s: float = Field(default=30, gt=0, le=300, description="the longest one query may take")
    version_label: str = Field(default="mlops_ci_dev_model_version", description="the series label holding the "
                               "pod label mlops-ci.dev/model-version (the canary's and the primary's version)")
    queries: Queries = Field(default=Queries(), description="PromQL templates replacing the deployment mode's "
                             "defaults; placeholders: " + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))
    thresholds: Thresholds = Field(default=Thresholds(), description="when the canary fails a measure")
    min_requests: int = Field(default=50, ge=1, description="requests each side must have answered over the "
                              "window; fewer makes the analysis inconclusive, never a pass")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("version_label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not _LABEL_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a Prometheus label name (letters, digits and '_')")
        return value

    @model_validator(mode="before")
    @classmethod
    def _no_token(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in ("token", "bearer_token", "prometheus_token",
                                                              "password", "basic_auth")):
            raise ValueError("a credential does not belong in .mlops-ci.yaml: remove it and set the environment "
                             f"variable {TOKEN_ENV} (a repository secret in GitHub Actions)")
        return data


class LogsAnalysis(Strict):
    """The canary's answers against the primary's in KServe's payload logs (the model's
    monitoring.logs, or serving.logging's storage): the records name the endpoint that answered."""

    min_rows: int = Field(default=100, ge=1, description="answered requests each side needs over the window; "
                          "fewer: inconclusive")
    psi: float | None = Field(default=0.5, gt=0, description="the canary's predictions fail at this PSI against "
                              "the primary's (null: not judged by PSI). A retrained model moves its predictions "
                              "(0.2-0.3 is common); the default catches one that moved as a broken model does. "
                              "Tune it to what your retrains move")
    js: float | None = Field(default=0.3, gt=0, le=1, description="... or at this Jensen-Shannon distance")
    metric: str | None = Field(default=None, description="where labels arrived (monitoring.labels): the live "
                               "metric compared (default: accuracy, or rmse for regression)")
    max_drop: float = Field(default=0.02, ge=0, description="how much worse than the primary's the canary's "
                            "metric may be")


class AnalysisConfig(Strict):
    """What decides whether a rollout step goes on; without a source, a step is judged on nothing
    and stays inconclusive."""

    prometheus: PrometheusAnalysis | None = Field(default=None, description="compare the canary with the "
                                                  "primary in Prometheus (error rate, latency, traffic)")
    logs: LogsAnalysis | None = Field(default=None, description="compare the canary's predictions with the "
                                      "primary's in the payload logs (and the live metric where labels arrived)")


def queries_for(cfg: PrometheusAnalysis, deployment_mode: DeploymentMode) -> dict[str, str]:
    """The template of each measure analysed: the config's, else the mode's default. A measure
    whose thresholds are null is left out (``requests`` is always asked: it decides inconclusive)."""
    defaults = DEFAULT_QUERIES[deployment_mode]
    out = {}
    for measure in MEASURES:
        if measure != "requests" and getattr(cfg.thresholds, measure) is None:
            continue
        out[measure] = getattr(cfg.queries, measure) or defaults[measure]
    return out


__all__ = ["DEFAULT_QUERIES", "MEASURES", "PLACEHOLDERS", "TOKEN_ENV", "AnalysisConfig", "Limit", "LogsAnalysis",
           "PrometheusAnalysis", "Queries", "Thresholds", "queries_for", "render"]

"""`environments.<env>.rollout`: how a new version reaches the environment, step by step.

    environments:
      prod:
        namespace: models
        rollout:
          steps:
            - {canary: 10, soak: 10m}
            - {canary: 50, soak: 10m}
          max_soak: 1h              # an inconclusive step soaks longer, up to this ...
          on_inconclusive: hold     # ... then holds (or aborts); it never goes on without data
          argocd: {url: https://argocd.example.com, application: mlops-ci-prod}

Without ``rollout`` a promotion swaps the whole environment in one commit, as before. With it, the
promotion commits the first step (the candidate as a canary beside the version served now), and
``mlops-ci rollout advance`` commits each next step once the step is live (Argo CD) and its soak's
analysis passed, then the full promotion. Serving must be a KServe InferenceService: Serverless
splits traffic between revisions (``canaryTrafficPercent``), RawDeployment runs the canary as its
own predictor (``spec.canary``). A plain Deployment is refused: Argo Rollouts is the tool for it.
KServe mirrors no traffic (kserve#2978), so there is no shadow step.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from mlops_ci.config.analysis import AnalysisConfig
from mlops_ci.config.base import Name, Strict, duration_setting

# ``30s``, ``10m``, ``1h``, ``1d`` as a timedelta (ValueError otherwise): a soak may be seconds
parse_duration, Duration = duration_setting("smhd", "90s, 10m or 1h", digits=6)


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")) or len(value) < 10:
        raise ValueError(f"{value!r} is not an http(s):// URL of the Argo CD API server")
    if "@" in value.split("://", 1)[1].split("/", 1)[0]:
        raise ValueError("the URL carries credentials: remove them and set ARGOCD_TOKEN")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class ArgoCDConfig(Strict):
    """Where a rollout step is seen live: the Argo CD Application that syncs the environment."""

    url: HttpUrl = Field(description="the Argo CD API server (https://argocd.example.com); the token is read from "
                         "ARGOCD_TOKEN, never from this file")
    application: Name | None = Field(default=None, description="the Application syncing this environment's "
                                     "folder (default: mlops-ci-<env>, as manifests/argocd names them)")
    app_namespace: Name | None = Field(default=None, description="the Application's namespace, when Argo CD "
                                       "manages applications in more than its own")
    project: Name | None = Field(default=None, description="the Application's project (checked by Argo CD)")
    ca_file: str | None = Field(default=None, description="CA bundle that signed the server's certificate")
    insecure_skip_tls_verify: bool = Field(default=False, description="do not verify the server's TLS "
                                           "certificate (a port-forward to a self-signed server only)")

    @model_validator(mode="before")
    @classmethod
    def _no_token(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in ("token", "auth_token", "argocd_token")):
            raise ValueError("a token does not belong in .mlops-ci.yaml: remove it and set the environment "
                             "variable ARGOCD_TOKEN (a repository secret in GitHub Actions)")
        return data


class RolloutStep(Strict):
    canary: int = Field(ge=1, le=99, description="percent of the traffic the candidate gets in this step")
    soak: Duration = Field(default="10m", description="how long the step runs before its analysis decides "
                           "(from the moment Argo CD reports it live)")


class RolloutConfig(Strict):
    steps: list[RolloutStep] = Field(min_length=1, max_length=20, description="the canary steps, in order; "
                                     "the full promotion follows the last")
    max_soak: Duration | None = Field(default=None, description="an inconclusive step (too little traffic, a "
                                      "source unreachable) soaks on up to this long (default: twice its soak)")
    lookback: Duration | None = Field(default=None, description="the span each analysis looks back over, "
                                      "up to now (default: the step's soak; never before the step went live). A "
                                      "failing analysis aborts once the step has been live that long (or its soak, "
                                      "if shorter): a lookback shorter than the soak rolls a failing canary back "
                                      "mid-soak")
    on_inconclusive: Literal["hold", "abort"] = Field(
        default="hold", description="what a step still inconclusive at max_soak does: 'hold' stays at the step "
        "until a person advances (--force --reason) or aborts it; 'abort' rolls back")
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig, description="what judges each step after "
                                     "its soak: the canary against the primary (Prometheus; the inference logs)")
    argocd: ArgoCDConfig | None = Field(default=None, description="the Argo CD API that reports each step live; "
                                        "without it a step counts as live from its commit")
    shadow: Any = Field(default=None, exclude=True, json_schema_extra={"deprecated": True},
                        description="refused: KServe mirrors no traffic (kserve#2978)")

    @field_validator("shadow")
    @classmethod
    def _no_shadow(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError("KServe cannot mirror traffic to a second predictor (kserve#2978, open), so a shadow "
                             "step cannot be rendered: remove shadow and start with a small canary (e.g. 5)")
        return value

    @model_validator(mode="after")
    def _rising(self) -> RolloutConfig:
        percents = [s.canary for s in self.steps]
        if any(b <= a for a, b in itertools.pairwise(percents)):
            raise ValueError(f"the canary steps must rise: {percents}")
        if self.max_soak is not None:
            longest = max(parse_duration(s.soak) for s in self.steps)
            if parse_duration(self.max_soak) < longest:
                raise ValueError(f"max_soak {self.max_soak} is shorter than a step's soak")
        return self

    def lookback_of(self, step: RolloutStep) -> timedelta:
        return parse_duration(self.lookback) if self.lookback else parse_duration(step.soak)

    def max_soak_of(self, step: RolloutStep) -> timedelta:
        """How long ``step`` may soak while its analysis is inconclusive."""
        return parse_duration(self.max_soak) if self.max_soak else 2 * parse_duration(step.soak)


DEPLOYMENT_REFUSED = ("a rollout needs a KServe InferenceService (kind inferenceservice): a plain Deployment has no "
                      "traffic split mlops-ci can write; Argo Rollouts is the tool for progressive delivery of "
                      "Deployments. Remove environments.{env}.rollout, or serve {model} with kind: inferenceservice")
CANARY_PERCENT_REFUSED = ("serving.canary_percent pins a fixed split, and environments.{env}.rollout moves it step "
                          "by step: remove canary_percent from {model}'s serving")


__all__ = ["CANARY_PERCENT_REFUSED", "DEPLOYMENT_REFUSED", "ArgoCDConfig", "RolloutConfig", "RolloutStep", "parse_duration"]

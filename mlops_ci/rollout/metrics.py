"""The canary against the primary in Prometheus, over a rollout step's soak window.

Each measure (requests, error rate, latency p99) is asked once per side, at the window's end and
over its length, and graded as one :class:`~mlops_ci.rollout.verdict.Finding`. The canary fails a
measure above its absolute ``max`` or above ``max_ratio`` times the primary's value. What cannot
be judged is ``inconclusive``, never a pass: either side below ``min_requests``, an empty answer,
NaN (no requests to divide by), more than one series where one number was expected, a query
Prometheus refuses (its message kept), or Prometheus unreachable.

The ratio divides by the primary's value floored at ``ratio_floor``: a primary with no errors at
all (0%) and a canary at 3% is 3× against a 1% floor, not infinitely worse; with a floor of 0 and
a primary at 0, the ratio is not used and ``max`` decides alone.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Protocol

from mlops_ci.config.analysis import DeploymentMode, Limit, PrometheusAnalysis, queries_for, render
from mlops_ci.errors import BackendError
from mlops_ci.rollout.verdict import FAIL, INCONCLUSIVE, PASS, Finding, Window

SOURCE = "prometheus"
LABELS = {"requests": "requests", "error_rate": "error rate", "latency_p99": "latency p99"}
CANARY, PRIMARY = "canary", "primary"


class QueryClient(Protocol):
    """What the analysis needs of Prometheus (mlops_ci.backends.prometheus.PrometheusClient)."""

    def query(self, expr: str, at: datetime | float | None = None) -> list[tuple[dict[str, str], float]]: ...


def _show(measure: str, value: float) -> str:
    if measure == "error_rate":
        return f"{value * 100:.1f}%"
    if measure == "latency_p99":
        ms = value * 1000
        return f"{ms:.1f} ms" if ms < 10 else f"{ms:,.0f} ms"
    return f"{value:,.0f}"


class _Asker:
    """Asks one measure of one side; once Prometheus proved unreachable, asks nothing more and
    answers every later question with that reason."""

    def __init__(self, client: QueryClient, at: datetime, values: dict[str, str]) -> None:
        self.client, self.at, self.values = client, at, values
        self.down: str | None = None

    def __call__(self, template: str, version: str) -> float | str:
        """The one number the query answers, or why there is none (a sentence)."""
        if self.down is not None:
            return self.down
        try:
            expr = render(template, **self.values, version=version)
        except ValueError as err:
            return f"the query cannot be built: {err}"
        try:
            samples = self.client.query(expr, self.at)
        except BackendError as err:
            reason = str(err)
            if getattr(err, "retryable", False) and getattr(err, "status", None) is None:
                self.down = reason  # connection refused or timed out: the next query would wait as long
            return reason
        if not samples:
            return "Prometheus has no series for it (check version_label and that the pods are scraped)"
        if len(samples) > 1:
            return (f"the query answered {len(samples)} series where one number was expected: "
                    "aggregate it (sum(...))")
        value = samples[0][1]
        if math.isnan(value) or math.isinf(value):
            return f"the query answered {value} (no requests in the window to divide by?)"
        return value


def _side(role: str, version: str) -> str:
    return f"the {role} (v{version})"


def _requests_finding(canary: float | str, primary: float | str, cfg: PrometheusAnalysis, versions: dict[str, str],
                      window: str) -> Finding:
    for role, answer in ((CANARY, canary), (PRIMARY, primary)):
        if isinstance(answer, str):
            return Finding(SOURCE, "requests", INCONCLUSIVE, f"requests of {_side(role, versions[role])} "
                           f"unknown: {answer}")
    assert isinstance(canary, float) and isinstance(primary, float)
    text = (f"{_show('requests', canary)} requests on {_side(CANARY, versions[CANARY])} and "
            f"{_show('requests', primary)} on {_side(PRIMARY, versions[PRIMARY])} over {window}")
    short = min(canary, primary) < cfg.min_requests
    if short:
        return Finding(SOURCE, "requests", INCONCLUSIVE, f"too little traffic: {text}, below min_requests "
                       f"{cfg.min_requests}", canary, primary, float(cfg.min_requests))
    return Finding(SOURCE, "requests", PASS, text, canary, primary, float(cfg.min_requests))


def grade(measure: str, canary: float, primary: float, limit: Limit) -> tuple[bool, str, float | None]:
    """(failed, why, the threshold that decided) for the canary's value against the primary's."""
    reasons: list[str] = []
    decided: float | None = None
    if limit.max is not None and canary > limit.max:
        reasons.append(f"over {_show(measure, limit.max)}")
        decided = limit.max
    base = max(primary, limit.ratio_floor)
    ratio_text = ""
    if limit.max_ratio is not None and base > 0:
        ratio = canary / base
        floored = f" (counted as {_show(measure, base)})" if base > primary else ""
        shown = f"{ratio:.1f}" if ratio < 10 else f"{ratio:,.0f}"
        ratio_text = f"{shown}× the primary's{floored}"
        if ratio > limit.max_ratio:
            reasons.append(f"{ratio_text}, over {limit.max_ratio:g}×")
            decided = limit.max_ratio if decided is None else decided
    if reasons:
        return True, ", ".join(reasons), decided
    within = []
    if limit.max is not None:
        within.append(f"within {_show(measure, limit.max)}")
    if limit.max_ratio is not None:
        within.append(f"{ratio_text}, within {limit.max_ratio:g}×" if ratio_text
                      else f"the ratio not used (the primary at 0, no ratio_floor), within {limit.max_ratio:g}×")
    return False, "; ".join(within), limit.max if limit.max is not None else limit.max_ratio


def _measure_finding(measure: str, canary: float | str, primary: float | str, limit: Limit,
                     versions: dict[str, str], traffic: Finding) -> Finding:
    label = LABELS[measure]
    for role, answer in ((CANARY, canary), (PRIMARY, primary)):
        if isinstance(answer, str):
            return Finding(SOURCE, measure, INCONCLUSIVE, f"{label} of {_side(role, versions[role])} "
                           f"unknown: {answer}")
    assert isinstance(canary, float) and isinstance(primary, float)
    failed, why, threshold = grade(measure, canary, primary, limit)
    text = (f"{label} {_show(measure, canary)} on {_side(CANARY, versions[CANARY])} against "
            f"{_show(measure, primary)} on {_side(PRIMARY, versions[PRIMARY])}")
    if traffic.status != PASS:  # a value from a handful of requests is noise, whichever way it points
        why = (f"too little traffic ({traffic.message.split(': ', 1)[-1]})" if traffic.canary is not None
               else "the traffic is unknown")
        return Finding(SOURCE, measure, INCONCLUSIVE, f"{text}: not judged, {why}", canary, primary, threshold)
    return Finding(SOURCE, measure, FAIL if failed else PASS, f"{text}: {why}", canary, primary, threshold)


def analyse_metrics(cfg: PrometheusAnalysis, client: QueryClient, *, namespace: str, name: str,
                    canary_version: str, primary_version: str, deployment_mode: DeploymentMode,
                    window: Window) -> list[Finding]:
    """One finding per measure: requests first (it decides whether the others can be judged), then
    the error rate and the latency p99 unless their thresholds are null."""
    templates = queries_for(cfg, deployment_mode)
    duration = f"{window.seconds}s"
    ask = _Asker(client, window.end, {"namespace": namespace, "name": name, "version_label": cfg.version_label,
                                      "window": duration})
    versions = {CANARY: canary_version, PRIMARY: primary_version}
    answers = {measure: {role: ask(template, versions[role]) for role in (CANARY, PRIMARY)}
               for measure, template in templates.items()}
    traffic = _requests_finding(answers["requests"][CANARY], answers["requests"][PRIMARY], cfg, versions, duration)
    findings = [traffic]
    for measure in templates:
        if measure == "requests":
            continue
        limit = getattr(cfg.thresholds, measure)
        findings.append(_measure_finding(measure, answers[measure][CANARY], answers[measure][PRIMARY], limit,
                                         versions, traffic))
    return findings


__all__ = ["QueryClient", "analyse_metrics", "grade"]

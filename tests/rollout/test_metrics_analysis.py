"""The canary against the primary in a real Prometheus (Debian's 2.42) scraping real MLServer
processes (prometheus_support): a healthy canary passes, planted errors and planted slowness
fail, and whatever cannot be judged is inconclusive, never a pass. The config's rules and the
client's answers to HTTP failures are tested first, without servers."""

from __future__ import annotations

import math
import re
import socket
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_support import champion_files, isolate, load, prometheus_binary, scene
from pydantic import ValidationError

from mlops_ci.backends.prometheus import PrometheusClient, PrometheusError
from mlops_ci.config import analysis
from mlops_ci.config.analysis import AnalysisConfig, Limit, PrometheusAnalysis, queries_for, render
from mlops_ci.rollout.metrics import analyse_metrics, grade
from mlops_ci.rollout.verdict import FAIL, INCONCLUSIVE, PASS, Window, combine

URL = "http://prometheus.monitoring:9090"


# -- the config -------------------------------------------------------------------------------------

def test_the_default_queries_follow_the_deployment_mode():
    cfg = PrometheusAnalysis(url=URL)
    serverless, raw = queries_for(cfg, "Serverless"), queries_for(cfg, "RawDeployment")
    assert set(serverless) == set(raw) == {"requests", "error_rate", "latency_p99"}
    assert "revision_app_request_count{" in serverless["requests"]
    assert 'response_code_class="5xx"' in serverless["error_rate"]
    assert "revision_app_request_latencies_bucket{" in serverless["latency_p99"]
    assert serverless["latency_p99"].endswith("/ 1000")  # Knative's milliseconds, as seconds
    assert "rest_server_requests_total{" in raw["requests"] and 'status_code=~"5.."' in raw["error_rate"]
    assert "rest_server_request_duration_seconds_bucket{" in raw["latency_p99"]
    query = render(raw["error_rate"], namespace="models", name="tiny", version="7",
                   version_label=cfg.version_label, window="300s")
    assert 'mlops_ci_dev_model_version="7"' in query and 'namespace="models"' in query and "[300s]" in query
    assert "{" + "version" not in query and "or vector(0)" in query


def test_a_query_or_a_null_threshold_overrides_the_defaults():
    cfg = PrometheusAnalysis(url=URL, queries={"requests": 'sum(my_requests{v="{version}"})'},
                             thresholds={"latency_p99": None})
    chosen = queries_for(cfg, "RawDeployment")
    assert chosen == {"requests": 'sum(my_requests{v="{version}"})',
                      "error_rate": analysis.DEFAULT_QUERIES["RawDeployment"]["error_rate"]}


def test_a_token_or_credentials_in_the_file_are_refused():
    with pytest.raises(ValidationError, match="PROMETHEUS_TOKEN"):
        PrometheusAnalysis(url=URL, token="s3cr3t-token")
    with pytest.raises(ValidationError) as err:
        PrometheusAnalysis(url="https://admin:hunter22@prom.example.com")
    assert "credentials" in str(err.value) and "hunter22" not in str(err.value).split("input_value")[0]
    assert AnalysisConfig().prometheus is None
    assert AnalysisConfig(prometheus={"url": "https://prom.example.com/"}).prometheus.url == "https://prom.example.com"


def test_thresholds_given_in_part_keep_their_defaults_and_are_checked():
    cfg = PrometheusAnalysis(url=URL, thresholds={"error_rate": {"max": 0.1}})
    assert cfg.thresholds.error_rate == Limit(max=0.1, max_ratio=2.0, ratio_floor=0.01)
    assert cfg.thresholds.latency_p99 == Limit(max_ratio=1.5, ratio_floor=0.01)
    assert PrometheusAnalysis(url=URL, thresholds={"error_rate": {"max_ratio": None}}).thresholds.error_rate.max == 0.05
    refused = {
        "set max, max_ratio or both": {"thresholds": {"latency_p99": {"max_ratio": None}}},
        "0.05 is 5%": {"thresholds": {"error_rate": {"max": 5}}},
        "greater than or equal to 1": {"thresholds": {"error_rate": {"max_ratio": 0.5}}},
        "unknown placeholder {nmespace}": {"queries": {"requests": 'sum(x{ns="{nmespace}", v="{version}"})'}},
        "has no {version}": {"queries": {"requests": "sum(x)"}},
        "not a Prometheus label name": {"version_label": "mlops-ci.dev/model-version"},
        "greater than or equal to 1 ": {"min_requests": 0},
    }
    for words, settings in refused.items():
        with pytest.raises(ValidationError, match=words.strip().replace("{", r"\{").replace("}", r"\}")):
            PrometheusAnalysis(url=URL, **settings)


def test_nothing_substituted_can_change_the_query_around_it():
    template = analysis.DEFAULT_QUERIES["RawDeployment"]["requests"]
    good = {"namespace": "models", "name": "tiny", "version_label": "l", "window": "60s"}
    with pytest.raises(ValueError, match="version"):
        render(template, **good, version='1"} or vector(1e9) or x{a="')
    with pytest.raises(ValueError, match="window"):
        render(template, **{**good, "window": "5m] offset 1d ["}, version="1")


def test_a_primary_at_zero_is_divided_by_the_floor_or_left_to_max():
    limit = Limit(max=0.05, max_ratio=2.0, ratio_floor=0.01)
    assert grade("error_rate", 0.015, 0.0, limit)[0] is False  # 1.5x the 1% floor
    failed, why, threshold = grade("error_rate", 0.03, 0.0, limit)
    assert failed and "3.0× the primary's (counted as 1.0%), over 2×" in why and threshold == 2.0
    failed, why, threshold = grade("error_rate", 0.12, 0.0, limit)
    assert failed and why.startswith("over 5.0%") and threshold == 0.05
    unfloored = Limit(max=0.05, max_ratio=2.0)
    unused = "within 5.0%; the ratio not used (the primary at 0, no ratio_floor), within 2×"
    assert grade("error_rate", 0.04, 0.0, unfloored) == (False, unused, 0.05)
    assert grade("error_rate", 0.0, 0.0, unfloored)[0] is False


# -- the client, over an injected session ------------------------------------------------------------

class _Answer:
    def __init__(self, status: int, body) -> None:
        self.status_code, self._body = status, body
        self.text, self.reason = (body if isinstance(body, str) else ""), "reason"

    def json(self):
        if isinstance(self._body, str):
            raise ValueError("not JSON")  # noqa: TRY004 (what requests raises)
        return self._body


class _Session:
    def __init__(self, answer: _Answer) -> None:
        self.answer, self.headers, self.calls = answer, {}, []

    def get(self, url, params=None, timeout=None):
        self.calls.append((url, params, timeout))
        return self.answer


def test_the_client_sends_the_token_never_shows_it_and_marks_what_to_retry():
    session = _Session(_Answer(401, "Unauthorized"))
    client = PrometheusClient(URL, env={"PROMETHEUS_TOKEN": "s3cr3t-token-value"}, session=session)
    assert session.headers["Authorization"] == "Bearer s3cr3t-token-value" and "s3cr3t" not in repr(client)
    at = datetime(2026, 1, 2, tzinfo=UTC)
    with pytest.raises(PrometheusError) as err:
        client.query("up", at)
    assert "answered 401" in str(err.value) and "set PROMETHEUS_TOKEN" in str(err.value)
    assert "s3cr3t" not in str(err.value) and not err.value.retryable
    assert session.calls[0][0] == URL + "/api/v1/query" and session.calls[0][1]["time"] == f"{at.timestamp():.3f}"
    session.answer = _Answer(503, {"status": "error", "errorType": "unavailable", "error": "x" * 1000})
    with pytest.raises(PrometheusError) as err:
        client.query("up")
    assert err.value.retryable and err.value.status == 503 and len(str(err.value)) < 400
    session.answer = _Answer(200, {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"a": "1"}, "value": [1.0, "NaN"]}, {"metric": {}, "value": [1.0, "+Inf"]}]}})
    (labels, nan), (_, inf) = client.query("x")
    assert labels == {"a": "1"} and math.isnan(nan) and inf == math.inf


# -- through a real Prometheus ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    prometheus_binary()  # skipped before anything is trained or started
    base = tmp_path_factory.getbasetemp()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base)
        folder = tmp_path_factory.mktemp("prometheus-scene")
        with scene(folder, champion_files(base, folder / "model")) as s:
            yield s


def settings(served, **more) -> PrometheusAnalysis:
    """The defaults but for a latency ratio_floor of 100 ms: two cores run four servers, Prometheus
    and the load, and tail latencies below that are this machine's noise (the planted sleep is not)."""
    return PrometheusAnalysis(url=served.prometheus.url, thresholds={"latency_p99": {"ratio_floor": 0.1}}, **more)


def analyse(served, canary: str, cfg: PrometheusAnalysis | None = None, *, client=None, window=None,
            mode="RawDeployment"):
    cfg = cfg or settings(served)
    client = client or PrometheusClient.from_config(cfg)
    found = analyse_metrics(cfg, client, namespace=canary, name="tiny", canary_version="2", primary_version="1",
                            deployment_mode=mode, window=window or served.window)
    return {f.name: f for f in found}


@pytest.mark.slow
def test_a_healthy_canary_passes_every_measure(served):
    found = analyse(served, "healthy")
    assert {name: f.status for name, f in found.items()} == {"requests": PASS, "error_rate": PASS,
                                                            "latency_p99": PASS}, found
    assert combine(found.values()).status == PASS
    sent = served.sent
    assert set(sent["healthy"]) == {200} and set(sent["primary"]) == {200}
    requests = found["requests"]  # what Prometheus counted is what was sent (increase() extrapolates)
    assert requests.canary == pytest.approx(sent["healthy"][200], rel=0.3)
    assert requests.primary == pytest.approx(sent["primary"][200], rel=0.3)
    assert requests.message.startswith(f"{requests.canary:,.0f} requests on the canary (v2) and ")
    assert found["error_rate"].message.startswith("error rate 0.0% on the canary (v2) against 0.0% on the primary (v1)")
    assert found["latency_p99"].canary > 0 and found["latency_p99"].primary > 0


@pytest.mark.slow
def test_planted_errors_fail_the_error_rate(served):
    codes = served.sent["errors"]
    assert codes[500] and codes[200] and codes[500] / sum(codes.values()) == pytest.approx(1 / 3, abs=0.02)
    found = analyse(served, "errors")
    error = found["error_rate"]
    assert error.status == FAIL and found["requests"].status == PASS and combine(found.values()).status == FAIL
    assert 0.2 < error.canary < 0.45 and error.primary == 0.0 and error.threshold == 0.05
    assert error.message.startswith(f"error rate {error.canary * 100:.1f}% on the canary (v2) against 0.0% on the "
                                    "primary (v1): over 5.0%, ")
    assert "\n" not in error.message


@pytest.mark.slow
def test_slower_answers_fail_the_latency(served):
    found = analyse(served, "slow")
    latency = found["latency_p99"]
    assert latency.status == FAIL and found["error_rate"].status == PASS and found["requests"].status == PASS
    assert latency.canary > 0.12 and latency.threshold == 1.5  # the planted sleep
    assert set(served.sent["slow"]) == {200}
    assert latency.message.startswith(f"latency p99 {latency.canary * 1000:,.0f} ms on the canary (v2) against ")
    assert "× the primary's" in latency.message and latency.message.endswith("over 1.5×")


@pytest.mark.slow
def test_too_little_traffic_or_none_at_all_is_inconclusive(served):
    cfg = settings(served, min_requests=100_000)
    found = analyse(served, "errors", cfg)  # a failing canary: not judged on too few requests either
    assert {f.status for f in found.values()} == {INCONCLUSIVE}
    assert found["requests"].message.startswith("too little traffic: ")
    assert found["requests"].message.endswith("below min_requests 100000")
    assert "not judged, too little traffic" in found["error_rate"].message
    quiet = analyse(served, "healthy", window=served.quiet)  # before the first inference request
    assert {f.status for f in quiet.values()} == {INCONCLUSIVE}
    assert "Prometheus has no series for it" in quiet["requests"].message
    assert combine(quiet.values()).status == INCONCLUSIVE


def _silent_socket():
    """A port that accepts connections and never answers (a Prometheus hung mid-query)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock


@pytest.mark.slow
def test_an_unreachable_prometheus_is_inconclusive_never_pass(served):
    from mlops_ci.runtime.mlserver import free_port

    class Counting(PrometheusClient):
        calls = 0

        def query(self, expr, at=None):
            Counting.calls += 1
            return super().query(expr, at)

    cfg = PrometheusAnalysis(url=f"http://127.0.0.1:{free_port()}")  # a stopped Prometheus: nothing listens
    found = analyse(served, "healthy", cfg, client=Counting(cfg.url))
    assert {f.status for f in found.values()} == {INCONCLUSIVE} and Counting.calls == 1  # asked once, not 6 times
    assert "is unreachable: ConnectionError" in found["requests"].message
    assert "check analysis.prometheus.url" in found["error_rate"].message
    with _silent_socket() as sock:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        hung = analyse(served, "healthy", PrometheusAnalysis(url=url), client=PrometheusClient(url, timeout=(1, 0.5)))
    assert {f.status for f in hung.values()} == {INCONCLUSIVE} and "ReadTimeout" in hung["requests"].message


@pytest.mark.slow
def test_a_query_prometheus_refuses_is_inconclusive_with_its_message(served):
    cfg = settings(served, queries={
        "error_rate": 'sum(rate(rest_server_requests_total{{version_label}="{version}"}[{window}])',  # a ) short
        "latency_p99": 'rest_server_requests_total{namespace="{namespace}", {version_label}="{version}"}'})
    found = analyse(served, "healthy", cfg)
    assert found["requests"].status == PASS
    error = found["error_rate"]
    assert error.status == INCONCLUSIVE and "Prometheus refused the query (bad_data)" in error.message
    assert "parse error" in error.message and "\n" not in error.message
    assert "series where one number was expected: aggregate it" in found["latency_p99"].message


@pytest.mark.slow
def test_the_serverless_defaults_are_valid_promql_and_find_no_knative_here(served):
    found = analyse(served, "healthy", mode="Serverless")
    assert {f.status for f in found.values()} == {INCONCLUSIVE}
    assert all("Prometheus has no series for it" in f.message for f in found.values())


@pytest.mark.slow
def test_the_client_reads_vectors_scalars_and_nan_and_refuses_other_results(served):
    client = PrometheusClient(served.prometheus.url)
    assert client.query("1 + 1") == [({}, 2.0)]
    assert math.isnan(client.query("0 / 0")[0][1])
    up = client.query('up{namespace="errors"}', served.window.end)
    assert sorted(labels["mlops_ci_dev_model_version"] for labels, _ in up) == ["1", "2"]
    assert {value for _, value in up} == {1.0}
    for expr, words in (('"text"', "a string result"), ("up[1m]", "a matrix result")):
        with pytest.raises(PrometheusError, match=words):
            client.query(expr)
    earlier = served.window.start - timedelta(hours=1)  # before Prometheus started: nothing stored
    assert client.query("up", earlier) == []


def test_a_window_is_asked_at_its_end_over_its_length():
    asked = []

    class Recorder:
        def query(self, expr, at=None):
            asked.append((expr, at))
            return [({}, 100.0)]

    end = datetime(2026, 3, 1, 12, tzinfo=UTC)
    found = analyse_metrics(PrometheusAnalysis(url=URL), Recorder(), namespace="models", name="tiny",
                            canary_version="2", primary_version="1", deployment_mode="RawDeployment",
                            window=Window(end - timedelta(minutes=10), end))
    assert len(asked) == 6 and all(at == end and "[600s]" in expr for expr, at in asked)
    assert [f.status for f in found] == [PASS, FAIL, PASS]  # 100 as an error rate: 10000%, over 5%


# -- a rollout through the CLI, judged by this Prometheus ---------------------------------------------

def rollout_repo(tiny_repo, tmp_path_factory, served, namespace: str):
    """tiny with prod serving v1 in ``namespace`` of the scene and two canary steps for v2, analysed by
    the scene's Prometheus (the same 100 ms latency floor as :func:`settings`)."""
    from test_rollout_cli import workspace

    analysis = ("      lookback: 1h\n      analysis:\n        prometheus:\n"
                f"          url: '{served.prometheus.url}'\n"
                "          thresholds: {latency_p99: {ratio_floor: 0.1}}\n")
    ws = workspace(tiny_repo, tmp_path_factory.mktemp("registry"), "RawDeployment",
                   steps="[{canary: 20, soak: 1s}, {canary: 60, soak: 1s}]", extra=analysis)
    config = ws.loaded.path
    config.write_text(config.read_text().replace("namespace: tiny-prod", f"namespace: {namespace}"))
    from conftest import git

    git(tiny_repo, "commit", "-qam", f"prod in {namespace}")
    return ws


def under_load(served, canary: str) -> None:
    """After a step's commit: traffic to both sides, until Prometheus has it."""
    import time

    time.sleep(1.0)  # the window starts at the step's commit (whole seconds): the load comes after
    load([served.servers["primary"].infer_url, served.servers[canary].infer_url], 6.0)
    served.prometheus.scraped_since(time.time())


@pytest.mark.slow
@pytest.mark.parametrize(("canary", "expected"), [("healthy", "completed"), ("errors", "aborted"),
                                                  ("slow", "aborted")])
def test_the_rollout_advances_or_aborts_as_prometheus_judges_the_canary(served, tiny_repo, tmp_path_factory,
                                                                       monkeypatch, capsys, canary, expected):
    from conftest import CONTRACTS
    from test_rollout_cli import alias, promote, remote, rollout, show, trailers

    from mlops_ci.errors import ExitCode

    monkeypatch.setenv("MLOPS_CI_CRDS", str(CONTRACTS / "kserve"))
    ws = rollout_repo(tiny_repo, tmp_path_factory, served, canary)
    assert promote(ws, "1") == 0  # served whole
    before = show(ws)
    assert promote(ws, "2") == 0  # step 1/2
    under_load(served, canary)
    capsys.readouterr()
    code = rollout(ws, "advance")
    out = capsys.readouterr().out
    if expected == "completed":  # every step: the analysis of each decides the next
        assert code == 0 and "tiny in prod: advanced to step 2/2: v2 takes 60% beside v1" in out, out
        assert trailers(ws)["Rollout-Step"] == "2/2 (60%)" and alias(ws) == "1"
        under_load(served, canary)
        code = rollout(ws, "advance")
        out = capsys.readouterr().out
    assert f"tiny in prod: {expected}" in out, out
    if expected == "completed":
        assert code == 0 and alias(ws) == "2" and trailers(ws)["Rollout-Step"] == "complete"
        assert "pass: " in trailers(ws)["Analysis"] and "prometheus/error_rate" in out
    else:  # the byte-exact rollback, a hold, the alias where it was; a failed check
        measure = "error_rate" if canary == "errors" else "latency_p99"
        assert code == ExitCode.GATE_FAILED and show(ws) == before and alias(ws) == "1"
        assert re.search(rf"fail +prometheus/{measure}: ", out) and trailers(ws)["Rollout-Step"] == "aborted at 1/2"
        assert "analysis fail: " in trailers(ws)["Analysis"]
        assert "hold" in out and remote(ws).exists()

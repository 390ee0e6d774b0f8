"""The Argo CD backend (mlops_ci/backends/argocd.py) against the local Argo CD API server
(tests/servers/argocd_api.py, a fixture that checks every request and answer against the upstream
swagger), with a real git repository deciding whether the synced revision contains a step's
commit: live at the commit and at a descendant; not live, with a reason a person can act on, while
OutOfSync, Degraded, Progressing, behind, or syncing; and the errors for a refused token, an
unknown application and an unreachable or failing server. The last tests prove the fixture's
contract check refuses a bad request and a bad answer, so its silence means something."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from conftest import commit, git
from servers.argocd_api import ArgoCDServer

from mlops_ci.backends.argocd import AppStatus, ArgoCD, ArgoCDError, live, parse_application
from mlops_ci.errors import BackendError

TOKEN = "argocd-token-s3cr3t-9f2c"
APP = "tiny-prod"
FAST = (2.0, 2.0)


@pytest.fixture
def history(tmp_path) -> tuple[Path, list[str]]:
    """A GitOps repository with three commits on main: the SHAs, oldest first."""
    repo = tmp_path / "gitops"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shas = []
    for step in ("10", "50", "100"):
        (repo / "weight").write_text(step)
        shas.append(commit(repo, f"canary weight {step}"))
    return repo, shas


@pytest.fixture
def contains(history):
    repo, _ = history

    def is_ancestor(descendant: str, ancestor: str) -> bool:
        proc = subprocess.run(["git", "merge-base", "--is-ancestor", ancestor, descendant], cwd=repo,
                              capture_output=True, check=False)
        return proc.returncode == 0

    return is_ancestor


@pytest.fixture
def srv():
    with ArgoCDServer(token=TOKEN) as server:
        yield server


def client(srv: ArgoCDServer, **kwargs) -> ArgoCD:
    return ArgoCD(srv.url, env={"ARGOCD_TOKEN": TOKEN}, timeout=FAST, **kwargs)


def check(srv: ArgoCDServer, step: str, contains, **kwargs) -> tuple[bool, str]:
    return live(client(srv).application(APP, **kwargs), step, contains)


# -- live or not ----------------------------------------------------------------------------------
def test_synced_and_healthy_at_the_step_commit_is_live(srv, history, contains):
    _, shas = history
    srv.set_app(APP, revision=shas[1], operation_phase="Succeeded")
    status = client(srv).application(APP)
    assert status.name == APP and status.sync_status == "Synced" and status.health_status == "Healthy"
    assert status.revision == shas[1] and status.operation_phase == "Succeeded"
    assert status.operation_finished_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert status.reconciled_at is not None and status.reconciled_at.tzinfo is not None
    ok, reason = live(status, shas[1], contains)
    assert ok, reason
    assert reason == f"Argo CD application {APP} is Synced to {shas[1][:12]} and Healthy"


def test_a_descendant_of_the_step_commit_is_live(srv, history, contains):
    _, shas = history
    srv.set_app(APP, revision=shas[2])
    assert check(srv, shas[0], contains)[0]


def test_a_multi_source_application_reads_the_first_revision(srv, history, contains):
    _, shas = history
    srv.set_app(APP, revisions=[shas[2], "0.4.1"])
    status = client(srv).application(APP)
    assert status.revision == shas[2]
    assert live(status, shas[2], contains)[0]


def test_out_of_sync_is_not_live_and_says_so(srv, history, contains):
    _, shas = history
    srv.set_app(APP, revision=shas[0], sync_status="OutOfSync")
    ok, reason = check(srv, shas[1], contains)
    assert not ok
    assert reason == (f"Argo CD application {APP} is OutOfSync (synced to {shas[0][:12]}, "
                      f"the step is {shas[1][:12]})")


def test_degraded_gives_the_health_message(srv, history, contains):
    _, shas = history
    srv.set_app(APP, revision=shas[1], health_status="Degraded",
                health_message="Deployment tiny-predictor has 0/2 ready replicas:\nImagePullBackOff")
    ok, reason = check(srv, shas[1], contains)
    assert not ok
    assert reason == (f"Argo CD application {APP} is Degraded: Deployment tiny-predictor has 0/2 ready "
                      "replicas: ImagePullBackOff")  # one line: server text is never trusted as layout


def test_progressing_means_wait(srv, history, contains):
    _, shas = history
    srv.set_app(APP, revision=shas[1], health_status="Progressing")
    ok, reason = check(srv, shas[1], contains)
    assert not ok and reason == f"Argo CD application {APP} is Progressing"


def test_synced_to_an_older_revision_is_not_live(srv, history, contains):
    _, shas = history
    srv.set_app(APP, revision=shas[0])
    ok, reason = check(srv, shas[2], contains)
    assert not ok
    assert reason == (f"Argo CD application {APP} is synced to {shas[0][:12]}, which does not contain "
                      f"the step's commit {shas[2][:12]} yet")


def test_a_running_sync_is_not_live(srv, history, contains):
    _, shas = history
    srv.set_app(APP, revision=shas[1], operation_phase="Running")
    status = client(srv).application(APP)
    assert status.operation_finished_at is None
    ok, reason = live(status, shas[1], contains)
    assert not ok and "a sync is running" in reason


def test_a_partial_answer_reads_as_unknown_never_a_crash():
    status = parse_application({"status": {"sync": None, "health": "?", "reconciledAt": "yesterday",
                                           "operationState": {"finishedAt": 3}}}, APP)
    assert status == AppStatus(APP, "Unknown", None, "Unknown", None, None, None, None)
    assert parse_application([], APP).sync_status == "Unknown"
    ok, reason = live(status, "9f8e7d6c5b4a", lambda d, a: True)
    assert not ok and "is Unknown" in reason


# -- the request ----------------------------------------------------------------------------------
def test_namespace_project_and_refresh_go_as_the_swagger_names_them(srv, history, contains):
    _, shas = history
    srv.set_app(APP, namespace="team-ml", project="ml", revision=shas[1], reconciled_at=None)
    status = client(srv).application(APP, app_namespace="team-ml", project="ml", refresh="normal")
    assert live(status, shas[1], contains)[0]
    assert status.reconciled_at is not None  # the refresh reached the server
    assert srv.log[-1].query == {"appNamespace": ["team-ml"], "projects": ["ml"], "refresh": ["normal"]}
    assert srv.violations == []  # accepted by the contract check (and the `with` asserts it again)
    with pytest.raises(ArgoCDError, match=r"Argo CD has no application tiny-prod in namespace team-ml"):
        client(srv).application(APP, app_namespace="team-ml", project="other")


# -- errors ---------------------------------------------------------------------------------------
def test_a_refused_token_names_the_variable_not_the_token(srv):
    srv.set_app(APP, revision="a" * 40)
    wrong = "wrong-token-7c1d"
    cd = ArgoCD(srv.url, env={"ARGOCD_TOKEN": wrong}, timeout=FAST)
    with pytest.raises(ArgoCDError) as caught:
        cd.application(APP)
    err = caught.value
    assert isinstance(err, BackendError) and err.status == 401 and not err.retryable
    assert "refused the token in ARGOCD_TOKEN" in str(err) and "argocd account generate-token" in str(err)
    for text in (str(err), repr(err), repr(cd), repr(err.args), str(err.__cause__)):
        assert wrong not in text
    with pytest.raises(ArgoCDError, match="none is set in ARGOCD_TOKEN"):
        ArgoCD(srv.url, env={}, timeout=FAST).application(APP)
    srv.forbidden.add(APP)
    with pytest.raises(ArgoCDError, match="refused the token in ARGOCD_TOKEN") as caught:
        client(srv).application(APP)
    assert caught.value.status == 403 and TOKEN not in str(caught.value) + repr(client(srv))


def test_an_unknown_application_is_a_404_with_a_hint(srv):
    with pytest.raises(ArgoCDError) as caught:
        client(srv).application("nope")
    err = caught.value
    assert err.status == 404 and not err.retryable
    assert err.message == "Argo CD has no application nope"
    assert "set the Argo CD application name" in (err.hint or "")


def test_a_server_that_is_down_is_retryable(srv):
    url = srv.url
    srv.stop()
    with pytest.raises(ArgoCDError) as caught:
        ArgoCD(url, token=TOKEN, timeout=FAST).application(APP)
    assert caught.value.retryable and "did not answer" in str(caught.value)
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (429, True), (500, True), (400, False)])
def test_server_failures_are_retryable_or_final(srv, status, retryable):
    srv.set_app(APP, revision="a" * 40)
    srv.fail_next(status)
    with pytest.raises(ArgoCDError) as caught:
        client(srv).application(APP)
    assert caught.value.status == status and caught.value.retryable is retryable
    assert client(srv).application(APP).revision == "a" * 40  # the next call goes through
    assert srv.request_count == 2


# -- the fixture has teeth ------------------------------------------------------------------------
def test_the_contract_check_refuses_a_bad_request_and_a_bad_answer():
    with ArgoCDServer(token=TOKEN, strict=False) as server:
        server.set_app(APP, revision="a" * 40)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        resp = requests.get(f"{server.url}/api/v1/applications/{APP}", params={"namespace": "argocd"},
                            headers=headers, timeout=FAST)
        assert resp.status_code == 400 and resp.json()["code"] == 3
        assert server.violations == [
            f"GET /api/v1/applications/{APP}: query parameter 'namespace' is not a parameter of ApplicationService_Get"]
        server.violations.clear()
        resp = requests.get(f"{server.url}/api/v1/applications/{APP}", params=[("refresh", "a"), ("refresh", "b")],
                            headers=headers, timeout=FAST)
        assert resp.status_code == 400
        assert server.violations == [(f"GET /api/v1/applications/{APP}: query parameter 'refresh' of "
                                       "ApplicationService_Get: given 2 times, but it is a single string")]
        server.violations.clear()

        server.set_app(APP, extra={"status": {"sync": {"status": 5}}, "kind": "Application"})
        status = ArgoCD(server.url, token=TOKEN, timeout=FAST).application(APP)
        assert status.sync_status == "Unknown"  # the client survives it too
        assert sorted(server.violations) == [
            'ApplicationService_Get 200 answer: kind: unknown field "kind"',
            "ApplicationService_Get 200 answer: status.sync.status: Invalid value: 5: must be of type string",
        ]
    with pytest.raises(AssertionError, match="local Argo CD server problems"):
        server.assert_clean()

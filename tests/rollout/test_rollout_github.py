"""A rollout's GitHub Deployment (issue 16): the promotion that starts it records the Deployment
`in_progress`; the full promotion marks it `success`, an abort `failure` and a note on the pull
request that shipped the version. Through the real CLI
against the local GitHub server (tests/servers/github_git.py, checked against GitHub's REST
contract; a test fixture, not GitHub) and a real git GitOps repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONTRACTS, git
from servers.github_git import GitBackedGitHubServer
from test_rollout_cli import promote, rollout, workspace

from mlops_ci.backends.tracking import tracking_for
from mlops_ci.errors import ExitCode

TOKEN = "ghs_rollout"


@pytest.fixture
def ws(tiny_repo, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MLOPS_CI_CRDS", str(CONTRACTS / "kserve"))
    ws = workspace(tiny_repo, tmp_path_factory.mktemp("registry"), "Serverless")
    source = git(tiny_repo, "rev-parse", "HEAD")
    for n in ("1", "2", "3"):  # trained from the commit above
        tracking_for(ws).set_version_tags("tiny", n, {"mlops_ci.head_sha": source, "mlops_ci.pr": "12"})
    return ws


@pytest.fixture
def server(ws, monkeypatch):
    with GitBackedGitHubServer() as server:
        server.add_user("deployer", token=TOKEN, type="Bot")
        server.link_git("acme/models", ws.top)
        server.add_collaborator("acme/models", "deployer", "write")
        server.add_pull("acme/models", number=12, title="more epochs")
        for key, value in {"GITHUB_API_URL": server.url, "GITHUB_REPOSITORY": "acme/models", "GITHUB_TOKEN": TOKEN,
                           "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "91"}.items():
            monkeypatch.setenv(key, value)
        yield server
        errors = [f"{r.method} {r.path}: {r.status}" for r in server.requests() if r.status >= 400]
        assert errors == [], "the client sent requests the server refused"


def states(server, version: str) -> list[str]:
    (deployment,) = [d for d in server.deployments("acme/models") if d.payload["version"] == version]
    return [s.state for s in deployment.statuses]


def test_the_rollout_s_deployment_is_in_progress_then_success(ws, server, capsys):
    assert promote(ws, "1") == 0 and states(server, "1") == ["success"]
    assert promote(ws, "2") == 0 and states(server, "2") == ["in_progress"]
    assert rollout(ws, "advance", "--force", "--reason", "looks good") == 0
    assert states(server, "2") == ["in_progress"]  # a step is no end
    assert rollout(ws, "advance", "--force", "--reason", "looks good") == 0
    assert states(server, "2") == ["in_progress", "success"]
    assert "GitHub Deployment http" in capsys.readouterr().out


def test_an_aborted_rollout_s_deployment_fails(ws, server, capsys):
    assert promote(ws, "1") == 0 and promote(ws, "2") == 0
    assert rollout(ws, "abort", "--reason", "error budget burnt") == ExitCode.OK
    assert states(server, "2") == ["in_progress", "failure"]
    statuses = server.deployments("acme/models")[-1].statuses
    assert "aborted: by " in statuses[-1].description and Path(ws.gitops_remote).exists()
    (note,) = server.comments("acme/models", 12)  # the pull request that shipped v2 hears why
    assert "the rollout of tiny v2 to `prod` was aborted" in note.body and "error budget burnt" in note.body
    assert "clear-hold" in note.body and "noted on " in capsys.readouterr().out

"""`promote --via-pr` and GitHub Deployments, against the local GitHub server.

The GitOps repository is a real bare git repository; the local GitHub server mirrors it as
``acme/gitops`` (tests/servers/github_git.py), so the branch mlops-ci pushes with git is the
branch the pull request is opened from. The ML repository (the tiny checkout) is mirrored as
``acme/models``, where the Deployments are recorded on its real commits. Every request is
checked by the server against the GitHub REST contract (strict: leaving the block raises).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import commit, git
from mlops_ci.backends.gitops import gitops_for, proposal_for
from mlops_ci.backends.tracking import tracking_for
from mlops_ci.cli.main import main
from mlops_ci.config import load_config
from mlops_ci.errors import ExitCode, UsageError
from mlops_ci.promotions import PROMOTIONS_NAME
from mlops_ci.stages.register import EVALUATION_TAG
from mlops_ci.workspace import Workspace
from servers.github_git import GitBackedGitHubServer
from registry import build_registry

TOKEN = "ghs_promoter"
BRANCH = "mlops-ci/promote/prod/tiny-v2"
ISVC = "environments/prod/tiny/inferenceservice.yaml"


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    return build_registry(tmp_path_factory.mktemp("registry"), 3,
                          lambda n: {EVALUATION_TAG: "pass", "mlops_ci.pr": "12"})


@pytest.fixture
def ws(tiny_repo, registry, monkeypatch) -> Workspace:
    config = tiny_repo / ".mlops-ci.yaml"
    text = config.read_text().replace("environments:\n", "environments:\n  prod:\n    namespace: tiny-prod\n", 1)
    config.write_text(text.replace("version: 1\n", "version: 1\ngitops:\n  github_repository: acme/gitops\n", 1))
    source = commit(tiny_repo, "a prod environment, promoted via pull request")
    (tiny_repo / ".mlops-ci").mkdir()
    shutil.copy(registry, tiny_repo / ".mlops-ci" / "mlflow.db")
    ws = Workspace.from_config(load_config(config), env={})
    tracking = tracking_for(ws)
    for n in ("1", "2", "3"):  # trained from the commit above
        tracking.set_version_tags("tiny", n, {"mlops_ci.head_sha": source})
    gitops_for(ws).ensure_exists()
    return ws


@pytest.fixture
def server(ws, monkeypatch):
    with GitBackedGitHubServer() as server:
        server.add_user("promoter", token=TOKEN, type="Bot")
        for repo, path in (("acme/gitops", Path(ws.gitops_remote)), ("acme/models", ws.top)):
            server.link_git(repo, path)
            server.add_collaborator(repo, "promoter", "write")
        for key, value in {"GITHUB_API_URL": server.url, "GITHUB_REPOSITORY": "acme/models",
                           "GITHUB_TOKEN": TOKEN, "GITHUB_SERVER_URL": "https://github.com",
                           "GITHUB_RUN_ID": "77"}.items():
            monkeypatch.setenv(key, value)
        yield server
        errors = [f"{r.method} {r.path}: {r.status}" for r in server.requests() if r.status >= 400]
        assert errors == [], "the client sent requests the server refused"


def cli(ws: Workspace, *args: str) -> int:
    return main(["promote", "--config", str(ws.loaded.path), "-m", "tiny", *args])


def remote(ws: Workspace) -> Path:
    return Path(ws.gitops_remote)


def test_prod_is_promoted_through_one_pull_request_and_a_deployment_in_progress(ws, server, capsys):
    assert cli(ws, "-e", "prod", "--version", "1", "--push") == 0  # the first version lands directly
    main_before = git(remote(ws), "rev-parse", "main")
    assert tracking_for(ws).version_by_alias("tiny", "prod").version == "1"

    assert cli(ws, "-e", "prod", "--version", "2") == 0  # prod: via pull request by default
    out = capsys.readouterr().out
    [pr] = [i for i in server.repo("acme/gitops").issues.values() if i.pull]
    assert f"proposed tiny v2 for prod: pull request https://github.com/acme/gitops/pull/{pr.number}" in out
    assert (pr.pull.head_ref, pr.pull.base_ref, pr.title, pr.user) == (BRANCH, "main", "promote tiny v2 to prod",
                                                                        "promoter")
    assert "-    mlops-ci.dev/model-version: '1'" in pr.body and "+    mlops-ci.dev/model-version: '2'" in pr.body
    assert "| Model-Version | `2` |" in pr.body and pr.body.rstrip().endswith("Source-PR: 12")
    # the branch holds the promotion commit on top of main; main did not move; the alias waits
    branch_sha = git(remote(ws), "rev-parse", BRANCH)
    assert pr.pull.head_sha == branch_sha and git(remote(ws), "rev-parse", f"{BRANCH}~1") == main_before
    assert git(remote(ws), "rev-parse", "main") == main_before
    assert "model-version: '2'" in git(remote(ws), "show", f"{BRANCH}:{ISVC}")
    assert tracking_for(ws).version_by_alias("tiny", "prod").version == "1"

    source = git(ws.top, "rev-parse", "HEAD")
    direct, proposed = server.deployments("acme/models")
    assert (direct.environment, direct.sha, direct.production_environment) == ("prod", source, True)
    assert direct.payload == {"model": "tiny", "version": "1", "alias": "prod", "digest": "sha256:" + "1" * 64,
                              "gitops_branch": "main", "manifest_commit": main_before}
    assert [(s.state, s.log_url) for s in direct.statuses] == [
        ("success", "https://github.com/acme/models/actions/runs/77")]
    assert proposed.payload["pull_request"] == f"https://github.com/acme/gitops/pull/{pr.number}"
    assert proposed.payload["manifest_commit"] == branch_sha and proposed.payload["gitops_branch"] == BRANCH
    assert [(s.state, s.log_url) for s in proposed.statuses] == [
        ("in_progress", f"https://github.com/acme/gitops/pull/{pr.number}")]
    create = server.requests("POST", r"/deployments$")[-1].body
    assert create["auto_merge"] is False and create["required_contexts"] == [] and create["ref"] == source


def test_the_same_promotion_again_finds_the_open_pull_request(ws, server, capsys):
    assert cli(ws, "-e", "prod", "--version", "1", "--push") == 0
    assert cli(ws, "-e", "prod", "--version", "2") == 0
    branch_sha = git(remote(ws), "rev-parse", BRANCH)
    deployments = len(server.deployments("acme/models"))
    capsys.readouterr()
    assert cli(ws, "-e", "prod", "--version", "2") == 0
    assert "pull request https://github.com/acme/gitops/pull/" in capsys.readouterr().out
    assert server.count("POST", r"/pulls$") == 1 and server.count("PATCH", r"/pulls/") == 0
    assert git(remote(ws), "rev-parse", BRANCH) == branch_sha  # no new commit, no force push
    assert len(server.deployments("acme/models")) == deployments  # nor a second deployment

    # the base moved meanwhile (another model's change): the branch is rebuilt on it, the PR updated
    clone = ws.top.parent / "gitops-clone"
    git(ws.top.parent, "clone", "--quiet", str(remote(ws)), str(clone))
    (clone / "README.md").write_text("GitOps\n")
    commit(clone, "a readme")
    git(clone, "push", "--quiet", "origin", "main")
    assert cli(ws, "-e", "prod", "--version", "2") == 0
    assert git(remote(ws), "rev-parse", BRANCH) == branch_sha  # same content: still a no-op
    assert server.count("POST", r"/pulls$") == 1

    # after the pull request is merged, the same promote is a no-op in git and moves the alias
    git(remote(ws), "update-ref", "refs/heads/main", branch_sha)
    capsys.readouterr()
    assert cli(ws, "-e", "prod", "--version", "2") == 0
    assert "tiny v2 is already what prod serves (no commit)" in capsys.readouterr().out
    assert tracking_for(ws).version_by_alias("tiny", "prod").version == "2"
    assert server.count("POST", r"/pulls$") == 1


def test_a_changed_proposal_replaces_the_branch_commit_and_updates_the_pull_request(ws, server):
    assert cli(ws, "-e", "prod", "--version", "1", "--push") == 0
    assert cli(ws, "-e", "prod", "--version", "2") == 0
    old = git(remote(ws), "rev-parse", BRANCH)
    # the serving settings change before the pull request is merged: the proposal follows them
    config = Path(ws.loaded.path)
    config.write_text(config.read_text().replace("    serving:\n", "    serving:\n      max_replicas: 3\n", 1))
    assert cli(ws, "-e", "prod", "--version", "2") == 0
    new = git(remote(ws), "rev-parse", BRANCH)
    assert new != old and "maxReplicas: 3" in git(remote(ws), "show", f"{BRANCH}:{ISVC}")
    assert server.count("POST", r"/pulls$") == 1 and server.count("PATCH", r"/pulls/") == 1
    [pr] = [i for i in server.repo("acme/gitops").issues.values() if i.pull]
    assert pr.pull.head_sha == new and "+    maxReplicas: 3" in pr.body


def test_a_token_without_deployments_permission_warns_and_the_promotion_stands(ws, server, monkeypatch, capsys):
    server.add_token("ghs_readonly", "promoter", read_only=True)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_readonly")
    assert cli(ws, "-e", "staging", "--version", "1") == 0
    out, err = capsys.readouterr()
    assert "promoted tiny v1 to staging" in out and "its GitHub Deployment was not recorded" in err
    assert "deployments: write" in err and "ghs_readonly" not in out + err
    assert server.deployments("acme/models") == [] and tracking_for(ws).version_by_alias("tiny", "staging")
    assert [(r.method, r.status) for r in server.requests()] == [("GET", 200), ("POST", 403)]
    server.clear_log()


def test_a_pull_request_needs_an_existing_base_branch(ws, server, capsys):
    assert cli(ws, "-e", "prod", "--version", "1") == ExitCode.INPUT
    assert "has no branch 'main' yet" in capsys.readouterr().err
    assert server.count("POST") == 0 and git(remote(ws), "for-each-ref") == ""


def test_dry_run_via_pr_says_what_it_would_open_and_does_nothing(ws, server, capsys):
    assert cli(ws, "-e", "prod", "--version", "1", "--push") == 0
    capsys.readouterr()
    assert cli(ws, "-e", "prod", "--version", "2", "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"would open a pull request from {BRANCH} in acme/gitops changing 1 file(s)" in out
    assert server.count("POST", r"/pulls") == 0 and "refs/heads/" + BRANCH not in server.repo("acme/gitops").refs


def test_declared_prod_entry_opens_the_pull_request(ws, server, capsys):
    (ws.top / PROMOTIONS_NAME).write_text("version: 1\nenvironments:\n  staging: {tiny: 1}\n  prod: {tiny: 2}\n")
    commit(ws.top, "declare")
    assert main(["promote", "--config", str(ws.loaded.path), "--declared"]) == 0
    out = capsys.readouterr().out
    assert "promoted: tiny v1 to staging" in out and "proposed: tiny v2 to prod: proposed in https://" in out
    assert server.count("POST", r"/pulls$") == 1
    assert "refs/heads/mlops-ci/promote/prod/tiny-v2" in server.repo("acme/gitops").refs
    assert {d.environment for d in server.deployments("acme/models")} == {"staging", "prod"}
    assert main(["promote", "--config", str(ws.loaded.path), "--declared"]) == 0  # open PR: nothing new
    assert server.count("POST", r"/pulls$") == 1 and len(server.deployments("acme/models")) == 2


def test_the_github_repository_comes_from_config_or_a_github_remote(ws):
    base = gitops_for(ws)
    assert proposal_for(ws, base, "prod", "tiny", "2").repository == "acme/gitops"
    cfg = ws.config.model_copy(deep=True)
    cfg.gitops.github_repository = None
    bare = Workspace(loaded=type(ws.loaded)(config=cfg, path=ws.loaded.path), top=ws.top, env={})
    with pytest.raises(UsageError, match="set gitops.github_repository"):
        proposal_for(bare, base, "prod", "tiny", "2")
    for url in ("https://github.com/acme/ops.git", "git@github.com:acme/ops.git", "https://x-access-token@github.com/acme/ops"):
        base.url = url
        assert proposal_for(bare, base, "prod", "tiny", "2").repository == "acme/ops"

"""`policy.approvers` with GitHub teams (`org/team-slug`), for slash commands and for promotions
proposed as a pull request in the GitOps repository, through the real CLI against the local GitHub
server (which checks every request and response against the REST contract).

Teams are read with MLOPS_CI_TEAMS_TOKEN (here an app granted `members: read` on acme); the
workflow's GITHUB_TOKEN cannot read them, which is an error that says so, never "a member".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, commit, git
from registry import build_registry
from servers.github_git import GitBackedGitHubServer
from test_slash_commands import (
    BOT,
    REPO,
    actions_env,
    event_payload,
    outputs,
    replies,
    slash_server,
)
from test_slash_promote import registry_for

from mlops_ci.backends.github.approvals import latest_reviews
from mlops_ci.backends.gitops import gitops_for
from mlops_ci.backends.tracking import tracking_for
from mlops_ci.cli.main import main
from mlops_ci.config import load_config
from mlops_ci.errors import ConfigError, ExitCode
from mlops_ci.stages.register import EVALUATION_TAG
from mlops_ci.workspace import Workspace

TEAM = "acme/ml-leads"
TEAMS_TOKEN = "ghs_teams_reader"  # an app's installation token with members: read on acme
MEMBERSHIP = "/orgs/acme/teams/ml-leads/memberships/"
PROD = "  prod:\n    namespace: tiny-prod\n    policy: {approvers: [maya, acme/ml-leads]}\n"


def with_prod(config: Path, extra: str = "") -> None:
    """The tiny project's config with a prod environment whose approvers are maya and a team."""
    text = config.read_text().replace("environments:\n", "environments:\n" + PROD, 1)
    config.write_text(text.replace("version: 1\n", "version: 1\n" + extra, 1))


# -- config ----------------------------------------------------------------------------------------
def test_approvers_are_logins_or_org_slash_team_slug(tmp_path):
    config = tmp_path / ".mlops-ci.yaml"
    shutil.copy(FIXTURES / "tiny" / ".mlops-ci.yaml", config)
    with_prod(config)
    assert load_config(config).config.environments["prod"].policy.approvers == ["maya", TEAM]
    for bad in ("acme/ML Leads", "acme/ml-leads/x", "-maya", "acme/", "a" * 40):
        shutil.copy(FIXTURES / "tiny" / ".mlops-ci.yaml", config)
        with_prod(config)
        config.write_text(config.read_text().replace("[maya,", f"['{bad}',"))
        with pytest.raises(ConfigError) as err:
            load_config(config)
        assert ".mlops-ci.yaml:5:" in err.value.message and "environments.prod.policy.approvers.0" in err.value.message
        assert "neither a GitHub login (e.g. alice) nor a team written org/team-slug" in err.value.message


# -- slash commands -------------------------------------------------------------------------------
@pytest.fixture
def slash(tmp_path, monkeypatch):
    """The GitHub server of the slash-command tests, the team, a reader of teams and a project
    whose prod lists maya and the team; v2 of tiny is registered for the pull request's head."""
    for server in slash_server():
        server.add_collaborator(REPO, "lee", "write")
        server.add_team(TEAM, members=["lee"], pending=["pat"])
        server.add_collaborator(REPO, "pat", "write")
        server.add_user("teams-reader[bot]", token=TEAMS_TOKEN, type="Bot", can_get_user=False)
        server.grant_members_read("acme", "teams-reader[bot]")
        repo = tmp_path / "project"
        shutil.copytree(FIXTURES / "tiny", repo)
        with_prod(repo / ".mlops-ci.yaml")
        git(repo, "init", "--quiet", "--initial-branch=main")
        git(repo, "add", "--all")
        git(repo, "commit", "--quiet", "-m", "base")
        monkeypatch.chdir(repo)
        monkeypatch.setenv("MLOPS_CI_TEAMS_TOKEN", TEAMS_TOKEN)
        pr = server.add_pull(REPO, user="octocat", head_ref="feature")
        registry_for(tmp_path, monkeypatch, pr.number, pr.pull.head_sha, "pull_request")
        yield server, pr


def comment(server, pr, tmp_path, monkeypatch, user: str, body: str | None = None) -> tuple[int, dict[str, str]]:
    """``user`` comments a promote of the head into prod; `mlops-ci command` answers it."""
    made = server.add_comment(REPO, pr.number, body or f"/mlops-ci promote prod @{pr.pull.head_sha[:12]}", user=user)
    env = actions_env(tmp_path, server, event_payload(made, pr.number))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return main(["command"]), outputs(env)


def test_a_team_member_s_promote_is_accepted_and_a_non_member_s_refused_naming_the_team(slash, tmp_path,
                                                                                        monkeypatch):
    server, pr = slash
    code, out = comment(server, pr, tmp_path, monkeypatch, "lee")
    assert (code, out["accepted"], out["version"]) == (0, "true", "2"), replies(server, pr)[-1].body
    [asked] = server.requests("GET", MEMBERSHIP)
    assert (asked.path, asked.operation, asked.status, asked.login) == (
        MEMBERSHIP + "lee", "teams/get-membership-for-user-in-org", 200, "teams-reader[bot]")

    code, out = comment(server, pr, tmp_path, monkeypatch, "alice")
    refusal = replies(server, pr)[-1].body
    assert (code, out["accepted"]) == (0, "false")
    assert "alice is not an approver of `prod`" in refusal
    assert "`maya`, team `acme/ml-leads`" in refusal and "not an active member of team `acme/ml-leads`" in refusal
    assert server.requests("GET", MEMBERSHIP)[-1].status == 404

    code, out = comment(server, pr, tmp_path, monkeypatch, "pat")  # invited, not yet a member
    assert out["accepted"] == "false" and "pat is not an approver" in replies(server, pr)[-1].body

    asked = server.count("GET", MEMBERSHIP)
    code, out = comment(server, pr, tmp_path, monkeypatch, "maya")  # listed by name: no team is asked
    assert out["accepted"] == "true" and server.count("GET", MEMBERSHIP) == asked


def test_a_rollback_from_a_team_member_is_accepted_and_staging_asks_no_team(slash, tmp_path, monkeypatch):
    server, pr = slash
    assert comment(server, pr, tmp_path, monkeypatch, "lee", "/mlops-ci rollback prod")[1]["accepted"] == "true"
    assert comment(server, pr, tmp_path, monkeypatch, "alice", "/mlops-ci rollback staging")[1]["accepted"] == "true"
    assert server.count("GET", MEMBERSHIP) == 1


def test_a_team_the_token_cannot_read_is_an_error_not_a_refusal(slash, tmp_path, monkeypatch, capsys):
    server, pr = slash
    monkeypatch.delenv("MLOPS_CI_TEAMS_TOKEN")  # the workflow's GITHUB_TOKEN: no members: read
    code, out = comment(server, pr, tmp_path, monkeypatch, "lee")
    err = capsys.readouterr().err
    assert code == ExitCode.BACKEND and out["accepted"] == "false"
    assert "cannot read the members of team acme/ml-leads" in err and "403" in err
    assert "members: read" in err and "MLOPS_CI_TEAMS_TOKEN" in err and BOT not in err
    assert replies(server, pr) == []  # nothing answered as if lee were refused (or accepted)
    [asked] = server.requests("GET", MEMBERSHIP)
    assert (asked.status, asked.login) == (403, "github-actions[bot]")


def test_a_person_s_token_that_cannot_see_the_team_reads_as_not_a_member(slash, tmp_path, monkeypatch):
    server, pr = slash
    server.add_user("outsider", token="ghp_outsider")  # a person outside the acme organization
    monkeypatch.setenv("MLOPS_CI_TEAMS_TOKEN", "ghp_outsider")
    code, out = comment(server, pr, tmp_path, monkeypatch, "lee")
    refusal = replies(server, pr)[-1].body
    assert (code, out["accepted"]) == (0, "false")  # GitHub's 404 is never "a member"
    assert "GitHub answers the same for a team the job's token cannot see" in refusal
    assert "MLOPS_CI_TEAMS_TOKEN" in refusal and "ghp_outsider" not in refusal


def test_the_latest_decisive_review_of_each_reviewer_counts():
    class R:
        def __init__(self, login, state, commit="c"):
            self.user, self.state, self.commit_id = type("U", (), {"login": login})(), state, commit

    reviews = [R("Maya", "APPROVED"), R("maya", "COMMENTED"), R("lee", "APPROVED"), R("lee", "CHANGES_REQUESTED"),
               R("kim", "CHANGES_REQUESTED"), R("kim", "APPROVED"), R("ann", "APPROVED"), R("ann", "DISMISSED")]
    assert latest_reviews(reviews) == {"maya": ("APPROVED", "c"), "lee": ("CHANGES_REQUESTED", "c"),
                                       "kim": ("APPROVED", "c"), "ann": ("DISMISSED", "c")}


# -- promotion via a pull request in the GitOps repository -------------------------------------------
BRANCH = "mlops-ci/promote/prod/tiny-v2"
GITOPS = "acme/gitops"


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> Path:
    return build_registry(tmp_path_factory.mktemp("registry"), 2, lambda n: {EVALUATION_TAG: "pass"})


@pytest.fixture
def proposed(tiny_repo, versions, monkeypatch, request):
    """prod serves v1 (pushed); v2 is proposed as a pull request in acme/gitops, not merged yet (with
    ``rollout`` as the parameter: prod rolls out, and the proposal is v2's first canary step)."""
    config = tiny_repo / ".mlops-ci.yaml"
    with_prod(config, "gitops:\n  github_repository: acme/gitops\n")
    if getattr(request, "param", None) == "rollout":
        config.write_text(config.read_text().replace(
            "    policy: {approvers: [maya, acme/ml-leads]}\n",
            "    policy: {approvers: [maya, acme/ml-leads]}\n    rollout: {steps: [{canary: 50}]}\n", 1))
    source = commit(tiny_repo, "prod lists approvers")
    (tiny_repo / ".mlops-ci").mkdir()
    shutil.copy(versions, tiny_repo / ".mlops-ci" / "mlflow.db")
    ws = Workspace.from_config(load_config(config), env={})
    for n in ("1", "2"):
        tracking_for(ws).set_version_tags("tiny", n, {"mlops_ci.head_sha": source})
    gitops_for(ws).ensure_exists()
    with GitBackedGitHubServer() as server:
        server.add_user("promoter", token="ghs_promoter", type="Bot")
        server.add_user("teams-reader[bot]", token=TEAMS_TOKEN, type="Bot")
        server.grant_members_read("acme", "teams-reader[bot]")
        server.add_team(TEAM, members=["lee"])
        for repo, path in ((GITOPS, Path(ws.gitops_remote)), ("acme/models", ws.top)):
            server.link_git(repo, path)
            server.add_collaborator(repo, "promoter", "write")
        for key, value in {"GITHUB_API_URL": server.url, "GITHUB_REPOSITORY": "acme/models",
                           "GITHUB_TOKEN": "ghs_promoter", "MLOPS_CI_TEAMS_TOKEN": TEAMS_TOKEN}.items():
            monkeypatch.setenv(key, value)
        assert promote(ws, "--version", "1", "--push") == 0
        assert promote(ws, "--version", "2") == 0
        [pr] = [i for i in server.repo(GITOPS).issues.values() if i.pull]
        yield ws, server, pr
        refused = [f"{r.method} {r.path}: {r.status}" for r in server.requests() if r.status >= 400]
        assert all(MEMBERSHIP in line and line.endswith("404") for line in refused), refused


def promote(ws: Workspace, *args: str) -> int:
    return main(["promote", "--config", str(ws.loaded.path), "-m", "tiny", "-e", "prod", *args])


def merge(ws: Workspace, server, pr) -> None:
    """Merge the proposal as GitHub would: the GitOps branch moves to its head; the pull request is merged."""
    remote = Path(ws.gitops_remote)
    git(remote, "update-ref", "refs/heads/main", git(remote, "rev-parse", BRANCH))
    server.merge_pull(GITOPS, pr.number)


def alias(ws: Workspace) -> str:
    return tracking_for(ws).version_by_alias("tiny", "prod").version


def test_the_proposal_says_who_must_approve_and_so_does_the_dry_run(proposed, capsys):
    ws, server, pr = proposed
    assert "Needs an approving review from one of `maya`, team `acme/ml-leads`" in pr.body
    capsys.readouterr()
    merge(ws, server, pr)
    assert promote(ws, "--version", "2", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "needs an approving review from one of `maya`, team `acme/ml-leads`" in out and alias(ws) == "1"


def test_a_merged_proposal_without_an_approver_s_approval_does_not_move_the_alias(proposed, capsys):
    ws, server, pr = proposed
    server.add_review(GITOPS, pr.number, "alice", "APPROVED")  # not an approver
    server.add_review(GITOPS, pr.number, "maya", "COMMENTED")
    merge(ws, server, pr)
    capsys.readouterr()
    assert promote(ws, "--version", "2") == ExitCode.INPUT
    err = capsys.readouterr().err
    url = f"https://github.com/{GITOPS}/pull/{pr.number}"
    assert f"alias 'prod' was not moved: {url} has no approving review from an approver" in err
    assert "`maya`, team `acme/ml-leads`" in err and "alice approved it but is not an approver" in err
    assert f"approve {url}" in err and alias(ws) == "1"
    assert server.count("GET", rf"/repos/{GITOPS}/pulls/{pr.number}/reviews$") == 1


def test_an_approval_followed_by_changes_requested_from_the_same_reviewer_is_not_one(proposed, capsys):
    ws, server, pr = proposed
    server.add_review(GITOPS, pr.number, "maya", "APPROVED")
    server.add_review(GITOPS, pr.number, "maya", "CHANGES_REQUESTED")
    merge(ws, server, pr)
    capsys.readouterr()
    assert promote(ws, "--version", "2") == ExitCode.INPUT
    assert "changes requested by maya (their latest review)" in capsys.readouterr().err and alias(ws) == "1"

    server.add_review(GITOPS, pr.number, "maya", "APPROVED")  # approved again: it completes
    assert promote(ws, "--version", "2") == 0 and alias(ws) == "2"


def test_an_approval_from_a_team_member_completes_the_promotion(proposed, capsys):
    ws, server, pr = proposed
    server.add_review(GITOPS, pr.number, "lee", "APPROVED")
    assert promote(ws, "--version", "2") == 0  # not merged yet: the open proposal is found, nothing moves
    assert alias(ws) == "1" and server.count("GET", MEMBERSHIP) == 0
    merge(ws, server, pr)
    capsys.readouterr()
    assert promote(ws, "--version", "2") == 0
    assert "tiny v2 is already what prod serves (no commit); alias 'prod' -> v2" in capsys.readouterr().out
    assert alias(ws) == "2"
    [asked] = server.requests("GET", MEMBERSHIP)
    assert (asked.path, asked.status, asked.login) == (MEMBERSHIP + "lee", 200, "teams-reader[bot]")
    assert promote(ws, "--version", "2") == 0  # completed: the alias names it, nothing is read again
    assert server.count("GET", MEMBERSHIP) == 1


def test_an_approval_of_a_commit_the_branch_no_longer_holds_does_not_count(proposed, capsys):
    ws, server, pr = proposed
    server.add_review(GITOPS, pr.number, "maya", "APPROVED", commit_id="0" * 40)
    merge(ws, server, pr)
    capsys.readouterr()
    assert promote(ws, "--version", "2") == ExitCode.INPUT
    assert "maya approved an earlier commit, not its head" in capsys.readouterr().err and alias(ws) == "1"


def test_a_version_in_place_without_a_merged_proposal_is_refused(proposed, capsys):
    ws, _, _ = proposed
    remote = Path(ws.gitops_remote)
    git(remote, "update-ref", "refs/heads/main", git(remote, "rev-parse", BRANCH))  # pushed past the review
    capsys.readouterr()
    assert promote(ws, "--version", "2") == ExitCode.INPUT
    err = capsys.readouterr().err
    assert f"no pull request from {BRANCH} was merged into main in {GITOPS}" in err and alias(ws) == "1"


@pytest.mark.parametrize("proposed", ["rollout"], indirect=True)
def test_a_rollout_started_by_a_proposal_goes_on_only_once_an_approver_approved_it(proposed, capsys):
    ws, server, pr = proposed
    merge(ws, server, pr)  # merged without an approver's review: step 1 is in the GitOps branch
    rollout = ["rollout", "advance", "--config", str(ws.loaded.path), "-m", "tiny", "-e", "prod"]
    capsys.readouterr()
    assert main([*rollout, "--force", "--reason", "dashboards look fine"]) == 0
    out = capsys.readouterr().out
    assert "tiny in prod: held" in out and "the pull request that started the rollout of tiny v2 is not " \
        "approved" in out and alias(ws) == "1"
    server.add_review(GITOPS, pr.number, "maya", "APPROVED")
    assert main([*rollout, "--force", "--reason", "dashboards look fine"]) == 0
    assert "tiny in prod: completed: v2 serves all of prod" in capsys.readouterr().out and alias(ws) == "2"

"""`mlops-ci monitor` on GitHub: the monitoring issue created, updated, closed when the traffic
recovers and reopened on new drift, and one retraining pull request per episode (updated, not
duplicated; snoozed after it is closed unmerged), through PyGithub against the local GitHub
server (tests/servers/github*.py, checked against ../shared/contracts/github/rest-api.json). The
repository's origin is a real bare git repository the server mirrors, so the branch mlops-ci
pushes is the head of the pull request it opens."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import cli, git
from github import Auth, Github
from monitor_support import DAY, UNTIL, with_monitoring, write_week
from servers.github_git import GitBackedGitHubServer

from mlops_ci.records.monitor import load_monitor_record

pytestmark = pytest.mark.slow
TOKEN = "ghs_monitor"
REPO = "acme/tiny"


@pytest.fixture
def setup(champion_repo, tmp_path):
    repo = champion_repo
    with_monitoring(repo, logs="logs", min_rows=100, retrain={"after": 2, "command": [sys.executable, "refresh.py"],
                                                               "snooze": "3d"})
    write_week(repo, repo / "logs")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(repo), str(origin)], check=True)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "fetch", "--quiet", "origin")
    with GitBackedGitHubServer() as server:
        server.add_user("monitor-bot", token=TOKEN, type="Bot")
        server.link_git(REPO, origin)
        server.add_collaborator(REPO, "monitor-bot", "write")
        env = {"GITHUB_API_URL": server.url, "GITHUB_REPOSITORY": REPO, "GITHUB_TOKEN": TOKEN}
        yield repo, server, env
        refused = [f"{r.method} {r.path}: {r.status}" for r in server.requests() if r.status >= 400]
        assert refused == [], "the client sent requests the server refused"


def run(repo, env, *args):
    proc = cli(repo, "monitor", "--model", "tiny", "--env", "staging", "--until", UNTIL.isoformat(), "--windows",
               "4", *args, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert TOKEN not in proc.stdout + proc.stderr
    return load_monitor_record(repo / ".mlops-ci" / "monitor" / "tiny-staging.json")


def test_the_issue_and_the_retraining_pull_request_follow_the_traffic(setup):
    repo, server, env = setup
    gh = Github(base_url=server.url, auth=Auth.Token(TOKEN)).get_repo(REPO)
    labelled = lambda state: list(gh.get_issues(state=state, labels=["mlops-ci:monitor"]))

    first = run(repo, env)
    assert first.issue.action == "created" and first.retrain.action == "opened"
    issue = gh.get_issue(first.issue.number)
    assert issue.title == "Monitoring: tiny in staging" and issue.state == "open"
    assert issue.body.startswith("<!-- mlops-ci:monitor model=tiny env=staging -->")
    assert f"#{first.retrain.number}" in issue.body  # links the retraining pull request
    pr = gh.get_pull(first.retrain.number)
    assert pr.head.ref == "mlops-ci/retrain/tiny/2026-12-04" and pr.base.ref == "main" and pr.state == "open"
    assert f"#{first.issue.number}" in pr.body and "drift at fail" in pr.body
    assert sorted(f.filename for f in pr.get_files()) == ["data/refreshed.txt", "data/train.csv"]
    refreshed = subprocess.run(["git", "--git-dir", str(repo.parent / "origin.git"), "show",
                                f"{pr.head.ref}:data/refreshed.txt"], text=True, capture_output=True, check=True)
    assert refreshed.stdout.split()[-1] == "token=False"  # the job's token is not the refresh's

    second = run(repo, env)  # the same episode: the same issue and pull request, updated
    assert second.issue.action == "updated" and second.issue.number == first.issue.number
    assert second.retrain.action == "updated" and second.retrain.number == first.retrain.number
    assert len(labelled("all")) == 1 and len(list(gh.get_pulls(state="open"))) == 1
    assert gh.get_pull(first.retrain.number).commits == 2

    gh.get_pull(first.retrain.number).edit(state="closed")  # a reviewer closes it unmerged
    third = run(repo, env)
    assert third.retrain.action == "snoozed" and "snoozed until" in third.retrain.reason
    assert len(list(gh.get_pulls(state="all"))) == 1

    calm = run(repo, env, "--until", (UNTIL - 2 * DAY).isoformat(), "--windows", "2")
    assert calm.windows[-1].status in ("pass", "warn") and calm.issue.action == "closed"
    closed = gh.get_issue(first.issue.number)
    assert closed.state == "closed" and closed.state_reason == "completed"
    assert any(c.body.startswith("Recovered") for c in closed.get_comments())
    assert labelled("open") == []

    again = run(repo, env, "--no-retrain")  # drift comes back: the same issue reopens
    assert again.issue.action == "reopened" and again.issue.number == first.issue.number
    assert gh.get_issue(first.issue.number).state == "open" and len(labelled("all")) == 1

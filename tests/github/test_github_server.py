"""The local GitHub REST server (tests/servers/github.py), exercised through PyGithub.

Every response the server sends is checked against the REST contract by the server itself; the
fixture fails a test whose responses broke it."""

from __future__ import annotations

import base64
import time
from datetime import datetime

import pytest
import requests
from github import (
    Auth,
    BadCredentialsException,
    Github,
    GithubException,
    GithubRetry,
    InputGitTreeElement,
    RateLimitExceededException,
)
from servers.github import GitHubServer
from servers.github_api import NOT_SERVED, ROUTES
from servers.github_contract import SPEC_PATH

REPO = "acme/models"
BOT = "ghs_bot"  # the workflow's GITHUB_TOKEN: github-actions[bot], write access
FORK = "ghs_fork"  # a fork PR's GITHUB_TOKEN: read-only
NO_CHECKS = "ghs_nochecks"  # a token without `checks: write`
ALICE = "ghp_alice"  # a maintainer (write)
MALLORY = "ghp_mallory"  # anyone (read, as the repository is public)


@pytest.fixture
def server():
    with GitHubServer() as srv:
        srv.add_user("github-actions[bot]", token=BOT, type="Bot", can_get_user=False)
        srv.add_token(FORK, "github-actions[bot]", read_only=True, can_get_user=False)
        srv.add_token(NO_CHECKS, "github-actions[bot]", checks_forbidden=True, can_get_user=False)
        srv.add_user("alice", token=ALICE, name="Alice", email="alice@example.com")
        srv.add_user("mallory", token=MALLORY)
        srv.add_repo(REPO, files={"README.md": "# models\n", "params.yaml": "lr: 0.1\n"})
        srv.add_collaborator(REPO, "github-actions[bot]", "write")
        srv.add_collaborator(REPO, "alice", "write")
        yield srv
        assert srv.errors == []


def client(server: GitHubServer, token: str = BOT, **kwargs) -> Github:
    """PyGithub without its client-side throttling (by default 1 s between writes)."""
    kwargs = {"retry": None, "seconds_between_requests": 0, "seconds_between_writes": 0, **kwargs}
    return Github(auth=Auth.Token(token), base_url=server.url, **kwargs)


def raw(server: GitHubServer, method: str, path: str, token: str | None = BOT, **kwargs):
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.request(method, server.url + path, headers=headers, timeout=10, **kwargs)


# -- comments, reactions, labels ---------------------------------------------------------------
def test_comments_create_list_across_pages_edit_delete(server):
    pr = server.add_pull(REPO, user="alice", head_ref="feature", files={"params.yaml": "lr: 0.2\n"})
    pull = client(server, per_page=2).get_repo(REPO).get_pull(pr.number)
    for i in range(5):
        pull.create_issue_comment(f"comment {i}")

    listed = list(pull.get_issue_comments())
    assert [c.body for c in listed] == [f"comment {i}" for i in range(5)]
    assert {c.user.login for c in listed} == {"github-actions[bot]"}
    pages = [r.query.get("page") for r in server.requests("GET", rf"/issues/{pr.number}/comments$")]
    assert pages == [None, "2", "3"]
    link = raw(server, "GET", f"/repos/{REPO}/issues/{pr.number}/comments?per_page=2").headers["Link"]
    assert 'rel="next"' in link and "page=3" in link and 'rel="last"' in link

    first = listed[0]
    assert first.html_url == f"https://github.com/{REPO}/pull/{pr.number}#issuecomment-{first.id}"
    server.advance_time(5)
    first.edit("edited")
    assert first.body == "edited" and first.updated_at > first.created_at
    assert server.comment(first.id).body == "edited"
    listed[1].delete()
    assert [c.body for c in server.comments(REPO, pr.number)] == [
        "edited", "comment 2", "comment 3", "comment 4"]
    assert server.post_counts()[f"/repos/{REPO}/issues/{pr.number}/comments"] == 5


def test_only_the_author_or_a_writer_edits_a_comment(server):
    pr = server.add_pull(REPO, user="alice")
    mine = client(server, MALLORY).get_repo(REPO).get_issue(pr.number).create_comment("/mlops-ci train")
    theirs = server.add_comment(REPO, pr.number, "maintainer note", user="alice")
    repo = client(server, MALLORY).get_repo(REPO)
    mine.edit("mine, edited")
    with pytest.raises(GithubException) as err:
        repo.get_issue(pr.number).get_comment(theirs.id).edit("hijacked")
    assert err.value.status == 403
    client(server, ALICE).get_repo(REPO).get_issue(pr.number).get_comment(mine.id).edit("by alice")
    assert server.comment(mine.id).body == "by alice"


def test_reactions_and_labels(server):
    pr = server.add_pull(REPO, user="alice")
    comment = server.add_comment(REPO, pr.number, "/mlops-ci promote staging", user="alice")
    issue = client(server).get_repo(REPO).get_issue(pr.number)
    reaction = issue.get_comment(comment.id).create_reaction("eyes")
    again = issue.get_comment(comment.id).create_reaction("eyes")
    assert reaction.id == again.id and reaction.content == "eyes"
    assert [r.content for r in server.comment(comment.id).reactions] == ["eyes"]
    assert raw(server, "POST", f"/repos/{REPO}/issues/comments/{comment.id}/reactions",
               json={"content": "eyes"}).status_code == 200
    assert raw(server, "GET", f"/repos/{REPO}/issues/comments/{comment.id}").json()["reactions"]["eyes"] == 1

    issue.add_to_labels("mlops-ci:trained", "bug")
    issue.remove_from_labels("bug")
    assert [label.name for label in client(server).get_repo(REPO).get_issue(pr.number).labels] == [
        "mlops-ci:trained"]


def test_comment_body_limit(server):
    pr = server.add_pull(REPO)
    response = raw(server, "POST", f"/repos/{REPO}/issues/{pr.number}/comments",
                   json={"body": "x" * 65537})
    assert response.status_code == 422
    assert "too long" in response.json()["errors"][0]["message"]
    assert server.comments(REPO, pr.number) == []


# -- checks and statuses -----------------------------------------------------------------------
def test_check_run_create_update_and_list(server):
    pr = server.add_pull(REPO, head_sha="a" * 40)
    repo = client(server).get_repo(REPO)
    run = repo.create_check_run("mlops-ci", "a" * 40, status="in_progress",
                                output={"title": "Checking", "summary": "running"})
    assert run.status == "in_progress" and run.conclusion is None
    assert [p.number for p in run.pull_requests] == [pr.number]
    run.edit(conclusion="failure", output={"title": "2 checks failed", "summary": "see below",
                                           "annotations": [{"path": "params.yaml", "start_line": 1,
                                                            "end_line": 1, "annotation_level": "failure",
                                                            "message": "drift"}]})
    assert run.status == "completed" and run.conclusion == "failure"
    repo.create_check_run("mlops-ci", "a" * 40, conclusion="success", output={"title": "ok", "summary": "ok"})

    latest = list(repo.get_commit("a" * 40).get_check_runs())
    assert [(r.name, r.conclusion) for r in latest] == [("mlops-ci", "success")]
    assert len(list(repo.get_commit("a" * 40).get_check_runs(filter="all"))) == 2
    stored = server.check_runs(REPO, "a" * 40)[0]
    assert stored.output["title"] == "2 checks failed" and len(stored.annotations) == 1

    with pytest.raises(GithubException) as err:
        repo.create_check_run("mlops-ci", "a" * 40, conclusion="bogus")
    assert err.value.status == 422
    with pytest.raises(GithubException) as err:
        repo.create_check_run("mlops-ci", "f" * 40)
    assert err.value.status == 422


def test_commit_status_and_combined_status(server):
    pr = server.add_pull(REPO, head_sha="b" * 40)
    commit = client(server).get_repo(REPO).get_commit(pr.pull.head_sha)
    commit.create_status("pending", context="mlops-ci/checks", description="running")
    commit.create_status("success", "https://ci.example/1", "all good", "mlops-ci/checks")
    commit.create_status("success", context="mlops-ci/train")
    combined = commit.get_combined_status()
    assert combined.state == "success" and combined.total_count == 2
    assert [s.state for s in server.statuses(REPO, "b" * 40)] == ["pending", "success", "success"]
    long = raw(server, "POST", f"/repos/{REPO}/statuses/{'b' * 40}",
               json={"state": "success", "description": "d" * 141})
    assert long.status_code == 422


def test_check_runs_forbidden_token_falls_back_to_statuses(server):
    sha = server.ref_sha(REPO, "main")
    repo = client(server, NO_CHECKS).get_repo(REPO)
    with pytest.raises(GithubException) as err:
        repo.create_check_run("mlops-ci", sha, status="in_progress")
    assert err.value.status == 403
    assert err.value.data["message"] == "Resource not accessible by integration"
    assert err.value.headers["x-accepted-github-permissions"] == "checks=write"
    repo.get_commit(sha).create_status("success", context="mlops-ci")
    assert [s.context for s in server.statuses(REPO, sha)] == ["mlops-ci"]


# -- permissions, auth -------------------------------------------------------------------------
def test_collaborator_permission(server):
    server.add_collaborator(REPO, "triager", "triage")
    repo = client(server).get_repo(REPO)
    assert repo.get_collaborator_permission("acme") == "admin"
    assert repo.get_collaborator_permission("alice") == "write"
    assert repo.get_collaborator_permission("mallory") == "read"
    assert repo.get_collaborator_permission("triager") == "read"
    body = raw(server, "GET", f"/repos/{REPO}/collaborators/triager/permission").json()
    assert body["role_name"] == "triage" and body["user"]["permissions"]["push"] is False
    with pytest.raises(GithubException) as err:
        repo.get_collaborator_permission("nobody")
    assert err.value.status == 404

    server.add_repo("acme/private", private=True)
    assert raw(server, "GET", "/repos/acme/private", token=MALLORY).status_code == 404
    assert client(server, "ghs_bot").get_repo(REPO).permissions.push is True


def test_read_only_token_gets_403_on_writes(server):
    pr = server.add_pull(REPO)
    issue = client(server, FORK).get_repo(REPO).get_issue(pr.number)
    assert issue.title == "A change"
    with pytest.raises(GithubException) as err:
        issue.create_comment("hello")
    assert err.value.status == 403
    assert err.value.data["message"] == "Resource not accessible by integration"
    assert server.comments(REPO, pr.number) == []


def test_authentication_is_required(server):
    assert raw(server, "GET", f"/repos/{REPO}", token=None).status_code == 401
    assert raw(server, "GET", f"/repos/{REPO}", token=None).json()["message"] == "Requires authentication"
    bearer = requests.get(f"{server.url}/repos/{REPO}", headers={"Authorization": f"Bearer {ALICE}"},
                          timeout=10)
    assert bearer.status_code == 200
    with pytest.raises(BadCredentialsException):
        client(server, "wrong-token").get_repo(REPO)
    assert client(server, ALICE).get_user().login == "alice"
    with pytest.raises(GithubException) as err:
        client(server, BOT).get_user().login  # noqa: B018 (the property fetches)
    assert err.value.status == 403


def test_requests_that_break_the_contract_get_422(server):
    pr = server.add_pull(REPO)
    wrong_type = raw(server, "POST", f"/repos/{REPO}/issues/{pr.number}/comments", json={"body": 42})
    assert wrong_type.status_code == 422
    error = wrong_type.json()
    assert set(error) >= {"message", "errors", "documentation_url"}
    assert error["errors"][0]["field"] == "body" and error["errors"][0]["code"] == "invalid"
    assert error["documentation_url"].startswith("https://docs.github.com/rest/issues/comments")
    missing = raw(server, "POST", f"/repos/{REPO}/statuses/{pr.pull.head_sha}", json={})
    assert missing.status_code == 422 and missing.json()["errors"][0]["code"] == "missing_field"
    bad_query = raw(server, "GET", f"/repos/{REPO}/pulls?state=merged")
    assert bad_query.status_code == 422
    bad_path = raw(server, "GET", f"/repos/{REPO}/pulls/abc")
    assert bad_path.status_code == 422
    not_json = raw(server, "POST", f"/repos/{REPO}/issues/{pr.number}/comments", data="{nope")
    assert not_json.status_code == 400
    assert raw(server, "GET", f"/repos/{REPO}/check-runs/1").status_code == 404  # not in the contract
    assert server.comments(REPO, pr.number) == []


def test_rate_limit_headers_and_exhaustion(server):
    server.add_token("ghp_tiny", "alice", rate_limit=3)
    gh = client(server, "ghp_tiny")
    gh.get_repo(REPO)
    assert gh.get_rate_limit().resources.core.remaining == 2
    assert gh.rate_limiting == (2, 3)
    gh.get_repo(REPO)
    gh.get_repo(REPO)
    with pytest.raises(RateLimitExceededException):
        gh.get_repo(REPO)
    server.advance_time(3601)
    assert gh.get_repo(REPO).full_name == REPO


# -- pulls, contents, git data, deployments ----------------------------------------------------
def test_pulls_get_list_create_update_and_forks(server):
    fork_pr = server.add_pull(REPO, user="mallory", head_repo="mallory/models", head_ref="patch",
                              files={"train.py": "print('hi')\n"})
    repo = client(server, ALICE).get_repo(REPO)
    pull = repo.get_pull(fork_pr.number)
    assert pull.head.repo.full_name == "mallory/models" and pull.head.repo.fork is True
    assert pull.base.repo.full_name == REPO and pull.head.sha == fork_pr.pull.head_sha
    assert [f.filename for f in pull.get_files()] == ["train.py"]
    assert repo.compare("main", "mallory:patch").ahead_by == 1
    assert pull.additions == 1 and pull.changed_files == 1

    server.commit_files(REPO, "feature", {"params.yaml": "lr: 0.3\n"})
    created = repo.create_pull(base="main", head="feature", title="Tune lr", body="...")
    assert created.head.repo.full_name == REPO and created.user.login == "alice"
    with pytest.raises(GithubException) as err:
        repo.create_pull(base="main", head="feature", title="again")
    assert err.value.status == 422
    created.edit(title="Tune the learning rate")
    assert [p.title for p in repo.get_pulls(state="open", sort="created", direction="asc")] == [
        "A change", "Tune the learning rate"]
    assert [p.number for p in repo.get_pulls(head="acme:feature")] == [created.number]


def test_contents_put_and_get(server):
    repo = client(server).get_repo(REPO)
    created = repo.create_file("deploy/staging/model.yaml", "promote", "version: 1\n", branch="main")
    assert created["content"].path == "deploy/staging/model.yaml"
    got = repo.get_contents("deploy/staging/model.yaml", ref="main")
    assert got.decoded_content == b"version: 1\n" and got.sha == created["content"].sha
    repo.update_file(got.path, "bump", "version: 2\n", got.sha, branch="main")
    assert server.file(REPO, "deploy/staging/model.yaml") == b"version: 2\n"
    assert [c.name for c in repo.get_contents("deploy/staging")] == ["model.yaml"]
    assert {c.name for c in repo.get_contents("")} == {"README.md", "params.yaml", "deploy"}

    stale = raw(server, "PUT", f"/repos/{REPO}/contents/deploy/staging/model.yaml",
                json={"message": "m", "content": base64.b64encode(b"x").decode(), "sha": got.sha})
    assert stale.status_code == 409
    no_sha = raw(server, "PUT", f"/repos/{REPO}/contents/deploy/staging/model.yaml",
                 json={"message": "m", "content": base64.b64encode(b"x").decode()})
    assert no_sha.status_code == 422
    with pytest.raises(GithubException) as err:
        repo.get_contents("missing.txt")
    assert err.value.status == 404


def test_git_data_blob_tree_commit_ref(server):
    repo = client(server).get_repo(REPO)
    main = repo.get_git_ref("heads/main")
    base = repo.get_git_commit(main.object.sha)
    blob = repo.create_git_blob("lr: 0.5\n", "utf-8")
    tree = repo.create_git_tree([InputGitTreeElement("params.yaml", "100644", "blob", sha=blob.sha),
                                 InputGitTreeElement("deploy/prod.yaml", "100644", "blob",
                                                     content="replicas: 2\n")],
                                base_tree=base.tree)
    assert {e.path for e in repo.get_git_tree(tree.sha, recursive=True).tree} == {
        "README.md", "params.yaml", "deploy", "deploy/prod.yaml"}
    commit = repo.create_git_commit("promote", tree, [base])
    assert [p.sha for p in commit.parents] == [base.sha]
    branch = repo.create_git_ref("refs/heads/promote/prod", commit.sha)
    assert repo.get_git_ref("heads/promote/prod").object.sha == commit.sha
    main.edit(commit.sha)  # a fast-forward
    assert server.file(REPO, "deploy/prod.yaml") == b"replicas: 2\n"
    with pytest.raises(GithubException) as err:
        main.edit(base.sha)  # not a fast-forward
    assert err.value.status == 422
    main.edit(base.sha, force=True)
    assert branch.ref == "refs/heads/promote/prod"
    assert repo.compare("main", "promote/prod").ahead_by == 1
    assert [f.filename for f in repo.get_commit(commit.sha).files] == ["deploy/prod.yaml", "params.yaml"]
    assert repo.get_branch("main").commit.sha == base.sha


def test_deployments_and_statuses(server):
    repo = client(server).get_repo(REPO)
    first = repo.create_deployment("main", environment="staging", required_contexts=[],
                                   payload={"model": "v1"}, description="v1")
    first.create_status("success", environment_url="https://staging.example", description="live")
    second = repo.create_deployment("main", environment="staging", required_contexts=[])
    second.create_status("in_progress")
    second.create_status("success")
    assert [s.state for s in first.get_statuses()] == ["inactive", "success"]  # auto_inactive
    assert [s.state for s in second.get_statuses()] == ["success", "in_progress"]
    assert [d.id for d in repo.get_deployments(environment="staging")] == [second.id, first.id]
    assert first.payload == {"model": "v1"} and first.creator.login == "github-actions[bot]"

    sha = server.ref_sha(REPO, "main")
    repo.get_commit(sha).create_status("failure", context="mlops-ci/checks")
    with pytest.raises(GithubException) as err:
        repo.create_deployment("main", environment="production")
    assert err.value.status == 409
    assert [d.environment for d in server.deployments(REPO)] == ["staging", "staging"]


# -- fault injection ---------------------------------------------------------------------------
def test_fault_bad_gateway(server):
    pr = server.add_pull(REPO)
    fault = server.inject("bad_gateway", method="POST", path=r"/comments$")
    issue = client(server).get_repo(REPO).get_issue(pr.number)
    with pytest.raises(GithubException) as err:
        issue.create_comment("hello")
    assert err.value.status == 502 and "Unicorn" in str(err.value.data)
    assert server.comments(REPO, pr.number) == [] and fault.remaining == 0
    issue.create_comment("hello")
    assert [r.status for r in server.requests("POST")] == [502, 201]
    assert [r.fault for r in server.requests("POST")] == ["bad_gateway", None]


def test_fault_bad_gateway_is_retried_by_github_retry(server):
    pr = server.add_pull(REPO)
    server.inject("bad_gateway", method="GET", path=rf"/pulls/{pr.number}$", times=2)
    gh = client(server, retry=GithubRetry(total=3, backoff_factor=0))
    assert gh.get_repo(REPO).get_pull(pr.number).number == pr.number
    assert [r.status for r in server.requests("GET", rf"/pulls/{pr.number}$")] == [502, 502, 200]


def test_fault_secondary_rate_limit(server):
    pr = server.add_pull(REPO)
    server.inject("secondary_rate_limit", method="POST", retry_after=30)
    response = raw(server, "POST", f"/repos/{REPO}/issues/{pr.number}/comments", json={"body": "x"})
    assert response.status_code == 403 and response.headers["Retry-After"] == "30"
    assert response.json()["message"].startswith("You have exceeded a secondary rate limit")
    assert server.comments(REPO, pr.number) == []

    server.inject("secondary_rate_limit", method="POST", status=429)
    issue = client(server).get_repo(REPO).get_issue(pr.number)
    with pytest.raises(GithubException) as err:
        issue.create_comment("x")
    assert err.value.status == 429
    server.inject("secondary_rate_limit", method="POST", retry_after=0)
    retrying = client(server, retry=GithubRetry(total=2, backoff_factor=0, secondary_rate_wait=0))
    retrying.get_repo(REPO).get_issue(pr.number).create_comment("after backoff")
    assert [c.body for c in server.comments(REPO, pr.number)] == ["after backoff"]


def test_fault_primary_rate_limit(server):
    server.inject("primary_rate_limit", path=rf"^/repos/{REPO}$", reset_in=120)
    with pytest.raises(RateLimitExceededException) as err:
        client(server).get_repo(REPO)
    assert err.value.status == 403
    assert err.value.headers["x-ratelimit-remaining"] == "0"
    assert int(err.value.headers["x-ratelimit-reset"]) >= time.time() + 100
    server.inject("primary_rate_limit", status=429)
    response = raw(server, "GET", f"/repos/{REPO}")
    assert response.status_code == 429 and response.headers["X-RateLimit-Remaining"] == "0"
    assert response.json()["message"].startswith("API rate limit exceeded")
    assert raw(server, "GET", f"/repos/{REPO}").status_code == 200


def test_fault_slow_reply(server):
    pr = server.add_pull(REPO)
    server.inject("slow", method="POST", delay=0.6)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{server.url}/repos/{REPO}/issues/{pr.number}/comments", json={"body": "late"},
                      headers={"Authorization": f"token {BOT}"}, timeout=0.2)
    assert time.monotonic() - started < 0.6
    deadline = time.monotonic() + 5
    while not server.comments(REPO, pr.number) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [c.body for c in server.comments(REPO, pr.number)] == ["late"]  # applied anyway


def test_fault_fail_after_commit(server):
    pr = server.add_pull(REPO)
    marker = "<!-- mlops-ci -->"
    server.inject("fail_after_commit", method="POST", path=r"/comments$")
    issue = client(server).get_repo(REPO).get_issue(pr.number)
    with pytest.raises(GithubException) as err:
        issue.create_comment(f"{marker}\nreport")
    assert err.value.status == 502
    # The write happened: a client that re-finds its comment before resending posts no duplicate.
    assert [c.body for c in issue.get_comments()] == [f"{marker}\nreport"]

    server.inject("fail_after_commit", method="POST", path=r"/comments$")
    blind = client(server, retry=GithubRetry(total=2, backoff_factor=0))
    blind.get_repo(REPO).get_issue(pr.number).create_comment(f"{marker}\nreport")
    assert len(server.comments(REPO, pr.number)) == 3  # a blind retry duplicates it
    assert server.post_counts()[f"/repos/{REPO}/issues/{pr.number}/comments"] == 3


def test_fault_skip_and_matching(server):
    pr = server.add_pull(REPO)
    fault = server.inject("bad_gateway", method="POST", path=r"/comments$", skip=1)
    repo = client(server).get_repo(REPO)  # GETs never match
    issue = repo.get_issue(pr.number)
    issue.create_comment("one")
    with pytest.raises(GithubException):
        issue.create_comment("two")
    issue.create_comment("three")
    assert fault.hits == 1
    assert [c.body for c in server.comments(REPO, pr.number)] == ["one", "three"]


# -- the server checks itself ------------------------------------------------------------------
def test_every_operation_of_the_contract_is_routed_or_not_served(server):
    operations = set(server.contract.by_id)
    assert len(operations) == 49 and set(ROUTES) | NOT_SERVED == operations
    assert not set(ROUTES) & NOT_SERVED
    assert NOT_SERVED == set()  # reviews and team memberships have handlers (tests/github/test_approvers.py)


def test_the_server_refuses_a_contract_it_does_not_cover(monkeypatch):
    monkeypatch.setattr("servers.github.ROUTES", {k: v for k, v in ROUTES.items() if k != "pulls/list-reviews"})
    missing = r"neither routed nor in NOT_SERVED: \[.pulls/list-reviews.\]"
    with pytest.raises(AssertionError, match=missing):
        GitHubServer()
    monkeypatch.undo()
    retired = SPEC_PATH.with_name("rest-api-subset.json")  # routes issues/create, not in it
    if retired.exists():
        with pytest.raises(AssertionError, match="routed or NOT_SERVED but not in the contract"):
            GitHubServer(spec_path=retired)


def test_an_operation_not_served_answers_501_and_fails_the_test(server, monkeypatch):
    monkeypatch.setattr("servers.github.NOT_SERVED", frozenset({"pulls/list-reviews"}))  # as if it had no handler
    pr = server.add_pull(REPO)
    path = f"/repos/{REPO}/pulls/{pr.number}/reviews"
    response = raw(server, "GET", path)
    assert response.status_code == 501
    assert response.json()["message"] == "pulls/list-reviews is not served by the local GitHub server"
    assert response.json()["documentation_url"].startswith("https://docs.github.com/rest/pulls/reviews")
    assert server.errors == [f"GET {path}: pulls/list-reviews is in NOT_SERVED (no handler)"]
    server.errors.clear()  # what made the fixture fail the test


def test_server_reports_its_own_invalid_responses():
    srv = GitHubServer()
    with pytest.raises(AssertionError, match="issues/get-comment 200"), srv:
        srv.add_user("alice", token=ALICE)
        srv.add_repo(REPO)
        pr = srv.add_pull(REPO)
        comment = srv.add_comment(REPO, pr.number, "hi", user="alice")
        render = srv.comment_json
        srv.comment_json = lambda repo, c: {**render(repo, c), "id": "not-an-integer"}
        assert raw(srv, "GET", f"/repos/{REPO}/issues/comments/{comment.id}", ALICE).ok
    assert any("'not-an-integer' is not of type 'integer'" in e for e in srv.errors)


def test_timestamps_are_utc_iso8601(server):
    pr = server.add_pull(REPO)
    body = raw(server, "POST", f"/repos/{REPO}/issues/{pr.number}/comments", json={"body": "t"}).json()
    created = datetime.fromisoformat(body["created_at"])
    assert body["created_at"].endswith("Z") and created.utcoffset().total_seconds() == 0

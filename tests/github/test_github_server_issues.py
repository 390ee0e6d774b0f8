"""Issues on the local GitHub REST server (tests/servers/github_api_issues.py) through PyGithub:
the sticky issue of the monitoring feature (found by a hidden marker and a label, created,
updated in place, closed, reopened), list filters, permissions and the contract's 422s; and the
contract's other operations that mlops-ci does not call but the server answers from its state.

Every response is checked against the contract by the server itself; the fixture fails a test
whose responses broke it."""

from __future__ import annotations

import pytest
import requests
from github import Auth, Github, GithubException
from servers.github import GitHubServer

REPO = "acme/models"
LABEL = "mlops-ci:monitor"
MARKER = "<!-- mlops-ci:monitor model=churn env=prod -->"
BOT = "ghs_bot"  # the workflow's GITHUB_TOKEN: github-actions[bot], write access
FORK = "ghs_fork"  # a fork PR's GITHUB_TOKEN: read-only
ALICE = "ghp_alice"  # a maintainer (write)
MALLORY = "ghp_mallory"  # anyone (read, as the repository is public)
TRIAGER = "ghp_triager"  # the triage role


@pytest.fixture
def server():
    with GitHubServer() as srv:
        srv.add_user("github-actions[bot]", token=BOT, type="Bot", can_get_user=False)
        srv.add_token(FORK, "github-actions[bot]", read_only=True, can_get_user=False)
        srv.add_user("alice", token=ALICE)
        srv.add_user("mallory", token=MALLORY)
        srv.add_user("triager", token=TRIAGER)
        srv.add_repo(REPO)
        srv.add_collaborator(REPO, "github-actions[bot]", "write")
        srv.add_collaborator(REPO, "alice", "write")
        srv.add_collaborator(REPO, "triager", "triage")
        yield srv
        assert srv.errors == []


def client(server: GitHubServer, token: str = BOT, **kwargs) -> Github:
    kwargs = {"retry": None, "seconds_between_requests": 0, "seconds_between_writes": 0, **kwargs}
    return Github(auth=Auth.Token(token), base_url=server.url, **kwargs)


def raw(server: GitHubServer, method: str, path: str, token: str = BOT, **kwargs):
    return requests.request(method, server.url + path, headers={"Authorization": f"token {token}"},
                            timeout=10, **kwargs)


def find(repo, marker: str = MARKER, label: str = LABEL):
    """What the monitoring feature does: every state, by label, newest update first, by marker."""
    return [i.number for i in repo.get_issues(state="all", labels=[label], sort="updated",
                                              direction="desc")
            if i.pull_request is None and (i.body or "").startswith(marker)]


def test_sticky_issue_create_find_update_close_reopen(server):
    decoy = server.add_issue(REPO, "Drift", user="mallory", body="no marker", labels=[LABEL])
    pr = server.add_pull(REPO, body=MARKER)
    client(server).get_repo(REPO).get_issue(pr.number).add_to_labels(LABEL)
    repo = client(server).get_repo(REPO)
    assert find(repo) == []

    issue = repo.create_issue("Drift: churn in prod", body=f"{MARKER}\nPSI 0.31", labels=[LABEL])
    assert issue.number == pr.number + 1 and issue.state == "open" and issue.state_reason is None
    assert [label.name for label in issue.labels] == [LABEL] and issue.pull_request is None
    assert issue.user.login == "github-actions[bot]"
    assert server.requests("POST", r"/issues$")[0].status == 201
    assert find(repo) == [issue.number]
    listed = {i.number: i for i in repo.get_issues(labels=[LABEL])}  # state defaults to open
    assert set(listed) == {decoy.number, pr.number, issue.number}
    assert listed[pr.number].pull_request.url.endswith(f"/pulls/{pr.number}")
    assert listed[issue.number].raw_data == repo.get_issue(issue.number).raw_data  # issues/get's shape

    server.advance_time(60)
    issue.edit(body=f"{MARKER}\nPSI 0.42")
    stored = server.issue(REPO, issue.number)
    assert stored.body.endswith("PSI 0.42") and stored.updated_at > stored.created_at
    assert stored.labels == [LABEL]  # an edit without labels keeps them

    issue.create_comment("Recovered: PSI 0.05")
    issue.edit(state="closed", state_reason="completed")
    assert issue.state == "closed" and issue.state_reason == "completed" and issue.closed_at
    assert issue.number not in [i.number for i in repo.get_issues(labels=[LABEL])]
    assert issue.number in [i.number for i in repo.get_issues(state="closed", labels=[LABEL])]
    assert find(repo) == [issue.number]  # still found, closed
    assert [i.number for i in server.issues(REPO, state="closed")] == [issue.number]

    issue.edit(body=f"{MARKER}\nPSI 0.5", state="open")
    assert (issue.state, issue.state_reason, issue.closed_at) == ("open", "reopened", None)
    assert [i.number for i in server.issues(REPO, label=LABEL)] == [decoy.number, issue.number]
    assert [i.number for i in server.issues(REPO, label=LABEL, pulls=True)] == [
        decoy.number, pr.number, issue.number]

    issue.edit(labels=["mlops-ci:drift", "Urgent"])  # replaces the set
    assert server.issue(REPO, issue.number).labels == ["mlops-ci:drift", "Urgent"]
    assert find(repo) == []


def test_list_issues_filters_sort_since_and_pages(server):
    server.add_issue(REPO, "one", user="alice", labels=["a", "b"])
    server.advance_time(10)
    server.add_issue(REPO, "two", user="mallory", labels=["A"], body="cc @Alice")
    server.advance_time(10)
    server.add_issue(REPO, "three", user="alice", state="closed", state_reason="not_planned")
    server.add_pull(REPO, user="alice")
    repo = client(server).get_repo(REPO)

    def numbers(**kwargs) -> list[int]:
        return [i.number for i in repo.get_issues(**kwargs)]

    assert numbers() == [4, 2, 1]  # open, newest first, the pull request too
    assert numbers(state="all", direction="asc") == [1, 2, 3, 4]
    assert numbers(labels=["a"]) == [2, 1] and numbers(labels=["a", "B"]) == [1]
    assert numbers(state="all", creator="alice") == [4, 3, 1]
    assert numbers(mentioned=repo.get_issue(1).user) == [2]
    assert numbers(assignee="none") == [4, 2, 1] and numbers(assignee="*") == []
    server.advance_time(10)
    repo.get_issue(1).edit(title="one, edited")
    assert numbers(sort="updated") == [1, 4, 2]
    assert numbers(since=server.issue(REPO, 1).updated_at) == [1]
    assert server.issue(REPO, 3).state_reason == "not_planned"

    paged = client(server, per_page=2).get_repo(REPO).get_issues(state="all")
    assert [i.number for i in paged] == [4, 3, 2, 1]
    link = raw(server, "GET", f"/repos/{REPO}/issues?state=all&per_page=2").headers["Link"]
    assert 'rel="next"' in link and "page=2" in link


def test_issue_permissions(server):
    alices = client(server, ALICE).get_repo(REPO).create_issue("Alice's", labels=["x"])
    # The read-only GITHUB_TOKEN of a fork PR writes nothing.
    response = raw(server, "POST", f"/repos/{REPO}/issues", FORK, json={"title": "t"})
    assert response.status_code == 403
    assert response.headers["X-Accepted-GitHub-Permissions"] == "issues=write"
    with pytest.raises(GithubException) as err:
        client(server, FORK).get_repo(REPO).create_issue("t")
    assert err.value.status == 403
    with pytest.raises(GithubException) as err:
        client(server, FORK).get_repo(REPO).get_issue(alices.number).edit(body="b")
    assert err.value.status == 403

    # Anyone who can read opens an issue, but their labels are dropped; they edit only their own.
    outsider = client(server, MALLORY).get_repo(REPO)
    mine = outsider.create_issue("Mallory's", body="b", labels=[LABEL])
    assert mine.labels == [] and LABEL.lower() not in server.repo(REPO).labels
    mine.edit(title="Mallory's, edited", labels=["x"], state="closed")
    assert (mine.title, mine.labels, mine.state) == ("Mallory's, edited", [], "closed")
    with pytest.raises(GithubException) as err:
        outsider.get_issue(alices.number).edit(body="hijacked")
    assert err.value.status == 403 and server.issue(REPO, alices.number).body is None

    client(server, TRIAGER).get_repo(REPO).get_issue(mine.number).edit(labels=["triaged"])
    assert server.issue(REPO, mine.number).labels == ["triaged"]
    server.add_repo("acme/private", private=True)
    assert raw(server, "POST", "/repos/acme/private/issues", MALLORY, json={"title": "t"}).status_code == 404


def test_issue_requests_the_contract_or_github_rejects(server):
    made = raw(server, "POST", f"/repos/{REPO}/issues",
               json={"title": 42, "labels": [{"name": LABEL}, LABEL.upper()]})
    assert made.status_code == 201 and made.headers["Location"] == made.json()["url"]
    assert made.json()["title"] == "42" and [x["name"] for x in made.json()["labels"]] == [LABEL]
    number = made.json()["number"]

    no_title = raw(server, "POST", f"/repos/{REPO}/issues", json={"body": "b"})
    assert no_title.status_code == 422
    assert no_title.json()["errors"][0] == {"resource": "issues/create", "field": "title",
                                            "code": "missing_field",
                                            "message": "For 'properties/title', it is required"}
    for path, method, body in [
        (f"/repos/{REPO}/issues/{number}", "PATCH", {"state": "done"}),
        (f"/repos/{REPO}/issues/{number}", "PATCH", {"labels": LABEL}),
        (f"/repos/{REPO}/issues/{number}", "PATCH", {"state": "closed", "state_reason": "reopened"}),
        (f"/repos/{REPO}/issues", "POST", {"title": " "}),
        (f"/repos/{REPO}/issues", "POST", {"title": "t", "body": "x" * 65537}),
        (f"/repos/{REPO}/issues?state=done", "GET", None),
    ]:
        response = raw(server, method, path, json=body)
        assert response.status_code == 422, (method, path, body, response.text)
    assert raw(server, "PATCH", f"/repos/{REPO}/issues/999", json={"body": "b"}).status_code == 404
    assert server.issue(REPO, number).state == "open"
    assert len(server.issues(REPO)) == 1

    server.add_repo("acme/no-issues", has_issues=False)
    gone = raw(server, "POST", "/repos/acme/no-issues/issues", json={"title": "t"})
    assert gone.status_code == 410 and gone.json()["message"] == "Issues are disabled for this repo"


def test_operations_mlops_ci_does_not_call_are_served_from_state(server):
    pr = server.add_pull(REPO, head_ref="feature")
    issue = server.add_issue(REPO)
    for number, body in [(pr.number, "first"), (issue.number, "second"), (pr.number, "third")]:
        server.add_comment(REPO, number, body)
        server.advance_time(1)
    repo = client(server).get_repo(REPO)
    assert [c.body for c in repo.get_issues_comments()] == ["first", "second", "third"]
    assert [c.body for c in repo.get_issues_comments(sort="created", direction="desc")] == [
        "third", "second", "first"]

    deployment = repo.create_deployment("main", environment="staging", required_contexts=[])
    assert repo.get_deployment(deployment.id).environment == "staging"
    assert raw(server, "GET", f"/repos/{REPO}/deployments/1").status_code == 404

    people = {u.login: u.permissions for u in repo.get_collaborators()}
    assert set(people) == {"acme", "github-actions[bot]", "alice", "triager"}
    assert people["triager"].triage and not people["triager"].push and people["acme"].admin
    assert {u.login for u in repo.get_collaborators(permission="push")} == {
        "acme", "github-actions[bot]", "alice"}
    assert raw(server, "GET", f"/repos/{REPO}/collaborators", MALLORY).status_code == 403

    repo.get_git_ref("heads/feature").delete()
    assert server.ref_sha(REPO, "refs/heads/feature") is None
    assert raw(server, "DELETE", f"/repos/{REPO}/git/refs/heads/feature").status_code == 422
    assert raw(server, "DELETE", f"/repos/{REPO}/git/refs/heads/main").status_code == 422
    assert raw(server, "DELETE", f"/repos/{REPO}/git/refs/heads/main", FORK).status_code == 403

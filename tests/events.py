"""GitHub webhook payloads as GitHub sends them, valid under the upstream schema.

Each ``*_event`` function builds one event with the values tests care about as parameters;
the bulky objects every payload carries (users, repositories, pull requests, issues, workflow
runs) come from the helpers below. :func:`validate` checks a payload against the schema's
definition for its event and action (``../shared/contracts/github/webhooks-schema.json``,
from octokit/webhooks), so a factory that drifts from what GitHub sends fails its test.

Every factory validates what it builds before returning it, so no test can use an invalid
payload by accident. ``valid=False`` skips that check; it is only for tests about broken or
unsupported input, which must say so. Tests that need a payload GitHub would never send (not
JSON, not an object) write it themselves and name it as such.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zlib

API = "https://api.github.com"
WEB = "https://github.com"
TIME = "2024-05-02T09:30:00Z"
ZERO_SHA = "0" * 40
REPO = "acme/churn"
FORK = "mallory/churn"


def sha(seed: str) -> str:
    """A realistic-looking, stable 40-hex SHA for ``seed``."""
    return hashlib.sha1(seed.encode()).hexdigest()


def _id(key: str) -> int:
    return zlib.crc32(key.encode()) % 90_000_000 + 1_000_000


# -- the objects every payload carries ---------------------------------------------------------
def user(login: str, *, type: str = "User") -> dict:
    uid, api = _id(login), f"{API}/users/{login}"
    return {
        "login": login, "id": uid, "node_id": f"U_kgDO{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4", "gravatar_id": "", "url": api,
        "html_url": f"{WEB}/{login}", "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}", "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs", "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events", "type": type, "site_admin": False,
    }


def repository_lite(full_name: str, *, fork: bool = False) -> dict:
    """The short repository object of ``workflow_run`` payloads."""
    owner, name = full_name.split("/")
    rid, api = _id(full_name), f"{API}/repos/{full_name}"
    return {
        "id": rid, "node_id": f"R_kgDO{rid}", "name": name, "full_name": full_name, "private": False,
        "owner": user(owner, type="User" if fork else "Organization"), "html_url": f"{WEB}/{full_name}",
        "description": f"{name} model", "fork": fork, "url": api,
        "forks_url": f"{api}/forks", "keys_url": f"{api}/keys{{/key_id}}",
        "collaborators_url": f"{api}/collaborators{{/collaborator}}", "teams_url": f"{api}/teams",
        "hooks_url": f"{api}/hooks", "issue_events_url": f"{api}/issues/events{{/number}}",
        "events_url": f"{api}/events", "assignees_url": f"{api}/assignees{{/user}}",
        "branches_url": f"{api}/branches{{/branch}}", "tags_url": f"{api}/tags",
        "blobs_url": f"{api}/git/blobs{{/sha}}",
        "git_tags_url": f"{api}/git/tags{{/sha}}", "git_refs_url": f"{api}/git/refs{{/sha}}",
        "trees_url": f"{api}/git/trees{{/sha}}", "statuses_url": f"{api}/statuses/{{sha}}",
        "languages_url": f"{api}/languages", "stargazers_url": f"{api}/stargazers",
        "contributors_url": f"{api}/contributors", "subscribers_url": f"{api}/subscribers",
        "subscription_url": f"{api}/subscription", "commits_url": f"{api}/commits{{/sha}}",
        "git_commits_url": f"{api}/git/commits{{/sha}}", "comments_url": f"{api}/comments{{/number}}",
        "issue_comment_url": f"{api}/issues/comments{{/number}}", "contents_url": f"{api}/contents/{{+path}}",
        "compare_url": f"{api}/compare/{{base}}...{{head}}", "merges_url": f"{api}/merges",
        "archive_url": f"{api}/{{archive_format}}{{/ref}}", "downloads_url": f"{api}/downloads",
        "issues_url": f"{api}/issues{{/number}}", "pulls_url": f"{api}/pulls{{/number}}",
        "milestones_url": f"{api}/milestones{{/number}}",
        "notifications_url": f"{api}/notifications{{?since,all,participating}}",
        "labels_url": f"{api}/labels{{/name}}", "releases_url": f"{api}/releases{{/id}}",
        "deployments_url": f"{api}/deployments",
    }


def repository(full_name: str, *, default_branch: str = "main", fork: bool = False) -> dict:
    """The full repository object (``repository`` of every event, ``base.repo`` / ``head.repo``)."""
    return {
        **repository_lite(full_name, fork=fork),
        "created_at": "2023-01-10T08:00:00Z", "updated_at": TIME, "pushed_at": TIME,
        "git_url": f"git://github.com/{full_name}.git", "ssh_url": f"git@github.com:{full_name}.git",
        "clone_url": f"{WEB}/{full_name}.git", "svn_url": f"{WEB}/{full_name}", "homepage": None, "size": 2048,
        "stargazers_count": 3, "watchers_count": 3, "language": "Python", "has_issues": not fork,
        "has_projects": True, "has_downloads": True, "has_wiki": True, "has_pages": False,
        "has_discussions": False, "forks_count": 0 if fork else 1, "mirror_url": None, "archived": False,
        "disabled": False, "open_issues_count": 2, "license": None, "allow_forking": True, "is_template": False,
        "web_commit_signoff_required": False, "topics": ["mlops"], "visibility": "public",
        "forks": 0 if fork else 1, "open_issues": 2, "watchers": 3, "default_branch": default_branch,
        "custom_properties": {},
    }


def reactions(url: str) -> dict:
    return {"url": f"{url}/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0}


def pull_request(number: int, *, title: str, base: dict, head: dict | None, author: str, head_ref: str,
                 head_sha: str, base_sha: str, base_ref: str = "main", body: str | None = None) -> dict:
    """An open pull request from ``head`` (a repository; None once a fork was deleted) into ``base``."""
    full = base["full_name"]
    api, issue_api = f"{API}/repos/{full}/pulls/{number}", f"{API}/repos/{full}/issues/{number}"
    html, statuses = f"{WEB}/{full}/pull/{number}", f"{API}/repos/{full}/statuses/{head_sha}"
    head_owner = head["owner"]["login"] if head else author
    fork = head is None or head["full_name"] != full
    return {
        "url": api, "id": _id(f"{full}#{number}"), "node_id": f"PR_kwDO{_id(full)}", "html_url": html,
        "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "issue_url": issue_api, "number": number,
        "state": "open", "locked": False, "title": title, "user": user(author), "body": body,
        "created_at": TIME, "updated_at": TIME, "closed_at": None, "merged_at": None, "merge_commit_sha": None,
        "assignee": None, "assignees": [], "requested_reviewers": [], "requested_teams": [], "labels": [],
        "milestone": None, "draft": False, "commits_url": f"{api}/commits", "review_comments_url": f"{api}/comments",
        "review_comment_url": f"{API}/repos/{full}/pulls/comments{{/number}}",
        "comments_url": f"{issue_api}/comments", "statuses_url": statuses,
        "head": {"label": f"{head_owner}:{head_ref}", "ref": head_ref, "sha": head_sha, "user": user(head_owner),
                 "repo": head},
        "base": {"label": f"{base['owner']['login']}:{base_ref}", "ref": base_ref, "sha": base_sha,
                 "user": base["owner"], "repo": base},
        "_links": {"self": {"href": api}, "html": {"href": html}, "issue": {"href": issue_api},
                   "comments": {"href": f"{issue_api}/comments"}, "review_comments": {"href": f"{api}/comments"},
                   "review_comment": {"href": f"{API}/repos/{full}/pulls/comments{{/number}}"},
                   "commits": {"href": f"{api}/commits"}, "statuses": {"href": statuses}},
        "author_association": "CONTRIBUTOR" if fork else "MEMBER", "auto_merge": None, "active_lock_reason": None,
        "merged": False, "mergeable": None, "rebaseable": None, "mergeable_state": "unknown", "merged_by": None,
        "comments": 0, "review_comments": 0, "maintainer_can_modify": fork, "commits": 1, "additions": 12,
        "deletions": 3, "changed_files": 2,
    }


def issue(number: int, *, repo: str, title: str, author: str, on_pull: bool) -> dict:
    """An issue; ``on_pull`` makes it the issue side of a pull request (``issue.pull_request`` set)."""
    api = f"{API}/repos/{repo}/issues/{number}"
    html = f"{WEB}/{repo}/{'pull' if on_pull else 'issues'}/{number}"
    out = {
        "url": api, "repository_url": f"{API}/repos/{repo}", "labels_url": f"{api}/labels{{/name}}",
        "comments_url": f"{api}/comments", "events_url": f"{api}/events", "html_url": html,
        "id": _id(f"{repo}#{number}"), "node_id": f"I_kwDO{_id(repo)}", "number": number, "title": title,
        "user": user(author), "labels": [], "state": "open", "locked": False, "assignee": None, "assignees": [],
        "milestone": None, "comments": 1, "created_at": TIME, "updated_at": TIME, "closed_at": None,
        "author_association": "MEMBER", "active_lock_reason": None, "body": None, "reactions": reactions(api),
        "timeline_url": f"{api}/timeline", "performed_via_github_app": None, "state_reason": None,
    }
    if on_pull:
        pulls = f"{API}/repos/{repo}/pulls/{number}"
        out["draft"] = False
        out["pull_request"] = {"url": pulls, "html_url": html, "diff_url": f"{html}.diff",
                               "patch_url": f"{html}.patch", "merged_at": None}
    return out


def comment(the_issue: dict, *, body: str, author: str, repo: str, id: int | None = None,
            author_type: str = "User", updated_at: str = TIME) -> dict:
    cid = _id(f"{the_issue['url']}:{body}") if id is None else id
    url = f"{API}/repos/{repo}/issues/comments/{cid}"
    return {"url": url, "html_url": f"{the_issue['html_url']}#issuecomment-{cid}", "issue_url": the_issue["url"],
            "id": cid, "node_id": f"IC_kwDO{cid}", "user": user(author, type=author_type), "created_at": TIME,
            "updated_at": updated_at, "author_association": "NONE" if author_type == "Bot" else "MEMBER",
            "body": body, "reactions": reactions(url), "performed_via_github_app": None}


def person(login: str) -> dict:
    """A commit author or committer (``committer`` in the schema)."""
    return {"name": login.title(), "email": f"{login}@users.noreply.github.com", "username": login}


def commit(commit_sha: str, *, repo: str, message: str, author: str, modified: tuple[str, ...] = ()) -> dict:
    return {"id": commit_sha, "tree_id": sha(f"tree:{commit_sha}"), "distinct": True, "message": message,
            "timestamp": "2024-05-02T11:30:00+02:00", "url": f"{WEB}/{repo}/commit/{commit_sha}",
            "author": person(author), "committer": person(author), "added": [], "removed": [],
            "modified": list(modified)}


def workflow(repo: str, *, name: str = "mlops-ci checks", path: str = ".github/workflows/mlops-ci.yml") -> dict:
    wid = _id(f"{repo}:{path}")
    return {"badge_url": f"{WEB}/{repo}/workflows/{name.replace(' ', '%20')}/badge.svg",
            "created_at": "2024-01-05T10:00:00Z", "html_url": f"{WEB}/{repo}/blob/main/{path}", "id": wid,
            "name": name, "node_id": f"W_kwDO{wid}", "path": path, "state": "active", "updated_at": TIME,
            "url": f"{API}/repos/{repo}/actions/workflows/{wid}"}


def workflow_run(*, repo: str, head_repo: str, head_branch: str, head_sha: str, title: str, actor: str,
                 run_id: int, pull_requests: list[dict], event: str = "pull_request") -> dict:
    """A finished run of :func:`workflow` in ``repo`` for a commit of ``head_repo``."""
    wf, api = workflow(repo), f"{API}/repos/{repo}/actions/runs/{run_id}"
    suite = _id(f"suite:{run_id}")
    head_commit = commit(head_sha, repo=head_repo, message=title, author=actor)
    return {
        "id": run_id, "name": wf["name"], "node_id": f"WFR_kwLO{run_id}", "head_branch": head_branch,
        "head_sha": head_sha, "path": wf["path"], "display_title": title, "run_number": 12, "event": event,
        "status": "completed", "conclusion": "success", "workflow_id": wf["id"], "check_suite_id": suite,
        "check_suite_node_id": f"CS_kwDO{suite}", "url": api, "html_url": f"{WEB}/{repo}/actions/runs/{run_id}",
        "pull_requests": pull_requests, "created_at": TIME, "updated_at": TIME, "actor": user(actor),
        "triggering_actor": user(actor), "run_attempt": 1, "referenced_workflows": [], "run_started_at": TIME,
        "jobs_url": f"{api}/jobs", "logs_url": f"{api}/logs",
        "check_suite_url": f"{API}/repos/{repo}/check-suites/{suite}",
        "artifacts_url": f"{api}/artifacts", "cancel_url": f"{api}/cancel", "rerun_url": f"{api}/rerun",
        "previous_attempt_url": None, "workflow_url": wf["url"],
        "head_commit": {k: head_commit[k] for k in ("id", "tree_id", "message", "timestamp", "author", "committer")},
        "repository": repository_lite(repo), "head_repository": repository_lite(head_repo, fork=head_repo != repo),
    }


def run_pull_request(repo: str, number: int, *, head_ref: str, head_sha: str, base_sha: str) -> dict:
    """An entry of ``workflow_run.pull_requests`` (GitHub lists only same-repository PRs there)."""
    ref = {"id": _id(repo), "url": f"{API}/repos/{repo}", "name": repo.split("/")[1]}
    return {"url": f"{API}/repos/{repo}/pulls/{number}", "id": _id(f"{repo}#{number}"), "number": number,
            "head": {"ref": head_ref, "sha": head_sha, "repo": ref},
            "base": {"ref": "main", "sha": base_sha, "repo": ref}}


# -- events ------------------------------------------------------------------------------------
def pull_request_event(action: str = "opened", *, number: int = 7, title: str = "Retrain churn on May data",
                       repo: str = REPO, head_repo: str | None = REPO, head_ref: str = "feature/may-data",
                       head_sha: str = sha("head"), base_sha: str = sha("base"), author: str = "dana",
                       before: str = sha("previous head"), valid: bool = True) -> dict:
    """``pull_request`` (and ``pull_request_target``) with ``action`` opened, reopened or synchronize.
    ``head_repo`` other than ``repo`` is a fork; None is a fork that was deleted."""
    base = repository(repo)
    head = None if head_repo is None else base if head_repo == repo else repository(head_repo, fork=True)
    pr = pull_request(number, title=title, base=base, head=head, author=author, head_ref=head_ref,
                      head_sha=head_sha, base_sha=base_sha)
    event = {"action": action, "number": number}
    if action == "synchronize":
        event |= {"before": before, "after": head_sha}
    return _checked(f"pull_request${action}", event | {"pull_request": pr, "repository": base,
                                                        "sender": user(author)}, valid)


def push_event(*, repo: str = REPO, ref: str = "refs/heads/main", before: str = sha("main~1"),
               after: str = sha("main"), pusher: str = "dana", message: str = "Merge pull request #7",
               valid: bool = True) -> dict:
    """A push of one commit; ``before`` = 40 zeros creates the branch."""
    created = before == ZERO_SHA
    head = commit(after, repo=repo, message=message, author=pusher, modified=("params.yaml",))
    compare = f"{WEB}/{repo}/compare/{ref.removeprefix('refs/heads/')}" if created else (
        f"{WEB}/{repo}/compare/{before[:12]}...{after[:12]}")
    # push payloads carry epoch timestamps and a few extra repository fields
    the_repo = repository(repo) | {"created_at": 1673337600, "pushed_at": 1714642200, "stargazers": 3,
                                   "master_branch": "main", "organization": repo.split("/")[0]}
    return _checked("push$event", {
        "ref": ref, "before": before, "after": after, "repository": the_repo,
        "pusher": {"name": pusher, "email": f"{pusher}@users.noreply.github.com"}, "sender": user(pusher),
        "created": created, "deleted": False, "forced": False, "base_ref": None, "compare": compare,
        "commits": [head], "head_commit": head}, valid)


def issue_comment_event(action: str = "created", *, repo: str = REPO, number: int = 9,
                        title: str = "Retrain churn on May data", body: str = "/mlops-ci promote staging",
                        commenter: str = "erin", commenter_type: str = "User", comment_id: int | None = None,
                        issue_author: str = "dana", on_pull: bool = True, previous_body: str = "LGTM",
                        valid: bool = True) -> dict:
    """``issue_comment`` with ``action`` created, edited or deleted, on a pull request (``on_pull``)
    or on a plain issue. ``commenter_type`` "Bot" is an app's comment (``dependabot[bot]``);
    ``comment_id`` is the comment's id (one from the test server), else a stable made-up one.
    An edit carries the body before it (``previous_body``) in ``changes``; the comment and the
    sender are the commenter's (GitHub's sender is whoever edited or deleted it)."""
    the_issue = issue(number, repo=repo, title=title, author=issue_author, on_pull=on_pull)
    edited_at = "2024-05-02T09:45:00Z" if action == "edited" else TIME
    the_comment = comment(the_issue, body=body, author=commenter, repo=repo, id=comment_id,
                          author_type=commenter_type, updated_at=edited_at)
    event: dict = {"action": action}
    if action == "edited":
        event["changes"] = {"body": {"from": previous_body}}
    event |= {"issue": the_issue, "comment": the_comment, "repository": repository(repo),
              "sender": user(commenter, type=commenter_type)}
    return _checked(f"issue_comment${action}", event, valid)


def workflow_run_event(*, repo: str = REPO, head_repo: str = FORK, head_branch: str = "patch-1",
                       head_sha: str = sha("fork head"), title: str = "Fix typo in features",
                       actor: str = "mallory", pr_number: int | None = None, base_sha: str = sha("base"),
                       run_id: int = 9001, valid: bool = True) -> dict:
    """``workflow_run`` completed, for the run of a pull request's checks. GitHub leaves
    ``pull_requests`` empty when the head is in a fork; ``pr_number`` fills it (same-repo PRs)."""
    prs = [] if pr_number is None else [run_pull_request(repo, pr_number, head_ref=head_branch, head_sha=head_sha,
                                                         base_sha=base_sha)]
    run = workflow_run(repo=repo, head_repo=head_repo, head_branch=head_branch, head_sha=head_sha, title=title,
                       actor=actor, run_id=run_id, pull_requests=prs)
    return _checked("workflow_run$completed", {"action": "completed", "workflow": workflow(repo),
                                               "workflow_run": run, "repository": repository(repo),
                                               "sender": user(actor)}, valid)


def workflow_dispatch_event(*, repo: str = REPO, ref: str = "refs/heads/main", inputs: dict | None = None,
                            sender: str = "dana", path: str = ".github/workflows/mlops-ci.yml",
                            valid: bool = True) -> dict:
    return _checked("workflow_dispatch$event", {"inputs": {} if inputs is None else inputs, "ref": ref,
                                                "repository": repository(repo), "sender": user(sender),
                                                "workflow": path}, valid)


def _checked(name: str, payload: dict, valid: bool) -> dict:
    """``payload``, once :func:`validate` passed it as a ``name`` (unless ``valid`` is False)."""
    if valid:
        validate(name, payload)
    return payload


# -- the schema --------------------------------------------------------------------------------
SCHEMA_URI = "urn:github:webhooks-schema"


@functools.cache
def _registry():
    from conftest import CONTRACTS
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    path = CONTRACTS / "github" / "webhooks-schema.json"
    if not path.exists():
        raise AssertionError(f"{path} is missing: the tests need ../shared/contracts beside the project")
    document = json.loads(path.read_text(encoding="utf-8"))
    return Registry().with_resource(SCHEMA_URI, Resource(document, specification=DRAFT7)), document


@functools.cache
def _validator(name: str):
    import jsonschema

    registry, document = _registry()
    if name not in document["definitions"]:
        raise AssertionError(f"the webhooks schema has no definition {name!r}")
    # formats are annotations here (no format_checker): GitHub's own URLs and dates are not the point
    return jsonschema.Draft7Validator({"$ref": f"{SCHEMA_URI}#/definitions/{name}"}, registry=registry)


def _describe(error) -> str:
    while error.context:  # oneOf / anyOf: the deepest reason says more than "not valid under any"
        error = max(error.context, key=lambda e: len(e.absolute_path))
    where = "/".join(map(str, error.absolute_path)) or "(top)"
    message = error.message if len(error.message) < 300 else error.message[:300] + "…"
    return f"{where}: {message}"


def validate(name: str, payload: dict) -> None:
    """Raise AssertionError naming every place ``payload`` breaks the schema's ``name``
    definition (``pull_request$opened``, ``push$event``, ...)."""
    errors = sorted(_validator(name).iter_errors(payload), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise AssertionError(f"payload is not a valid {name}:\n" + "\n".join(_describe(e) for e in errors))

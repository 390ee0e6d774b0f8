"""JSON representations of the fake GitHub's state, shaped like api.github.com's.

Every builder starts from :meth:`Contract.build` (all required fields of the component, filled
with neutral values) and sets the fields that carry meaning. The server validates each response
against the operation's schema before sending it."""

from __future__ import annotations

import base64
import difflib
import urllib.parse
from typing import TYPE_CHECKING, Any

from .github_state import (
    CheckRun,
    Comment,
    CommitStatus,
    Deployment,
    DeploymentStatus,
    GitHubState,
    Issue,
    Label,
    Reaction,
    Repo,
    TreeEntry,
    iso,
    rank,
)

if TYPE_CHECKING:
    from .github_contract import Contract

REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
ACTIONS_APP_ID = 15368
_REPO_URLS = {  # field -> suffix of the repository's API URL
    "archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}", "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}", "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}", "contributors_url": "/contributors",
    "deployments_url": "/deployments", "downloads_url": "/downloads", "events_url": "/events",
    "forks_url": "/forks", "git_commits_url": "/git/commits{/sha}", "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}", "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}", "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
    "languages_url": "/languages", "merges_url": "/merges", "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}", "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}", "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers", "subscription_url": "/subscription", "tags_url": "/tags",
    "teams_url": "/teams", "trees_url": "/git/trees{/sha}",
}


def node_id(kind: str, ident: int | str) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{ident}".encode()).decode()


class Renderer(GitHubState):
    contract: Contract
    url: str

    def api(self, repo: Repo) -> str:
        return f"{self.url}/repos/{repo.full_name}"

    def html(self, repo: Repo) -> str:
        return f"{self.html_base}/{repo.full_name}"

    # -- people and apps ------------------------------------------------------------------------
    def user_json(self, login: str, schema: str = "simple-user", **extra: Any) -> dict[str, Any]:
        user = self.add_user(login)
        api = f"{self.url}/users/{urllib.parse.quote(user.login)}"
        return self.contract.build(schema, {
            "login": user.login, "id": user.id, "node_id": node_id(user.type, user.id),
            "type": user.type, "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
            "gravatar_id": "", "url": api, "html_url": f"{self.html_base}/{user.login}",
            "followers_url": f"{api}/followers", "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}", "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions", "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events", "site_admin": False,
            "user_view_type": "public", **extra})

    def app_json(self) -> dict[str, Any]:
        """The ``github-actions`` GitHub App, which owns what a ``GITHUB_TOKEN`` creates."""
        return self.contract.build("nullable-integration", {
            "id": ACTIONS_APP_ID, "slug": "github-actions", "node_id": node_id("App", ACTIONS_APP_ID),
            "owner": self.user_json("github", type="Organization"), "name": "GitHub Actions",
            "description": "Automate your workflow from idea to production",
            "external_url": "https://help.github.com/en/actions",
            "html_url": f"{self.html_base}/apps/github-actions", "created_at": "2018-07-30T09:30:17Z",
            "updated_at": "2024-04-10T20:33:16Z",
            "permissions": {"checks": "write", "contents": "write", "deployments": "write",
                            "issues": "write", "metadata": "read", "pull_requests": "write",
                            "statuses": "write"},
            "events": ["check_run", "check_suite", "pull_request", "push", "status"]})

    def author_association(self, repo: Repo, login: str) -> str:
        if login.lower() == repo.owner.lower():
            return "OWNER"
        return "COLLABORATOR" if rank(repo.collaborators.get(login.lower(), "none")) > 0 else "NONE"

    # -- repositories ---------------------------------------------------------------------------
    def repo_json(self, repo: Repo, schema: str = "repository",
                  role: str | None = None) -> dict[str, Any]:
        api, html = self.api(repo), self.html(repo)
        host = urllib.parse.urlparse(self.html_base).hostname
        data: dict[str, Any] = {
            "id": repo.id, "node_id": node_id("Repository", repo.id), "name": repo.name,
            "full_name": repo.full_name, "owner": self.user_json(repo.owner), "private": repo.private,
            "visibility": "private" if repo.private else "public", "html_url": html,
            "description": repo.description, "fork": repo.parent is not None, "url": api,
            "clone_url": f"{html}.git", "git_url": f"git://{host}/{repo.full_name}.git",
            "ssh_url": f"git@{host}:{repo.full_name}.git", "svn_url": html, "homepage": None,
            "default_branch": repo.default_branch, "has_issues": repo.has_issues,
            "has_projects": True, "has_wiki": True, "has_downloads": True, "open_issues_count": self._open_issues(repo),
            "open_issues": self._open_issues(repo), "created_at": iso(repo.created_at),
            "updated_at": iso(repo.created_at), "pushed_at": iso(repo.created_at),
            **{key: api + suffix for key, suffix in _REPO_URLS.items()},
        }
        if role is not None:
            data["permissions"] = {"admin": rank(role) >= rank("admin"),
                                   "maintain": rank(role) >= rank("maintain"),
                                   "push": rank(role) >= rank("write"),
                                   "triage": rank(role) >= rank("triage"),
                                   "pull": rank(role) >= rank("read")}
        if schema == "full-repository" and repo.parent:
            parent = self.repo(repo.parent, live=True)
            data["parent"] = data["source"] = self.repo_json(parent)
        return self.contract.build(schema, data)

    def _open_issues(self, repo: Repo) -> int:
        return sum(1 for i in repo.issues.values() if i.state == "open")

    # -- issues, pulls, comments ----------------------------------------------------------------
    def label_json(self, repo: Repo, label: Label) -> dict[str, Any]:
        return self.contract.build("label", {
            "id": label.id, "node_id": node_id("Label", label.id), "name": label.name,
            "url": f"{self.api(repo)}/labels/{urllib.parse.quote(label.name)}",
            "color": label.color, "description": label.description, "default": False})

    def _labels(self, repo: Repo, issue: Issue) -> list[dict[str, Any]]:
        return [self.label_json(repo, repo.labels[name.lower()]) for name in issue.labels]

    def _comment_count(self, repo: Repo, number: int) -> int:
        return sum(1 for c in self._comments.values()
                   if c.repo == repo.full_name and c.issue_number == number)

    def issue_json(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        api, n = f"{self.api(repo)}/issues/{issue.number}", issue.number
        kind = "pull" if issue.pull else "issues"
        data = {
            "id": issue.id, "node_id": node_id("Issue", issue.id), "url": api,
            "repository_url": self.api(repo), "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments", "events_url": f"{api}/events",
            "html_url": f"{self.html(repo)}/{kind}/{n}", "number": n, "state": issue.state,
            "title": issue.title, "body": issue.body, "user": self.user_json(issue.user),
            "labels": self._labels(repo, issue), "assignee": None, "assignees": [],
            "milestone": None, "locked": issue.locked, "comments": self._comment_count(repo, n),
            "created_at": iso(issue.created_at), "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at), "state_reason": issue.state_reason,
            "author_association": self.author_association(repo, issue.user),
        }
        if issue.pull:
            pull_api = f"{self.api(repo)}/pulls/{n}"
            data["pull_request"] = {"url": pull_api, "html_url": data["html_url"],
                                    "diff_url": f"{data['html_url']}.diff",
                                    "patch_url": f"{data['html_url']}.patch",
                                    "merged_at": iso(issue.pull.merged_at)}
            data["draft"] = issue.pull.draft
        return self.contract.build("issue", data)

    def pull_json(self, repo: Repo, issue: Issue, schema: str = "pull-request") -> dict[str, Any]:
        pull, n = issue.pull, issue.number
        assert pull is not None
        api, html = f"{self.api(repo)}/pulls/{n}", f"{self.html(repo)}/pull/{n}"
        issue_api = f"{self.api(repo)}/issues/{n}"
        head_repo = self.repo(pull.head_repo, live=True)
        links = {"self": api, "html": html, "issue": issue_api, "comments": f"{issue_api}/comments",
                 "review_comments": f"{api}/comments", "commits": f"{api}/commits",
                 "review_comment": f"{self.api(repo)}/pulls/comments{{/number}}",
                 "statuses": f"{self.api(repo)}/statuses/{pull.head_sha}"}
        data: dict[str, Any] = {
            "id": issue.id + 100_000_000, "node_id": node_id("PullRequest", issue.id), "number": n,
            "url": api, "html_url": html, "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
            "issue_url": issue_api, "commits_url": links["commits"],
            "review_comments_url": links["review_comments"],
            "review_comment_url": links["review_comment"], "comments_url": links["comments"],
            "statuses_url": links["statuses"], "state": issue.state, "locked": issue.locked,
            "title": issue.title, "body": issue.body, "user": self.user_json(issue.user),
            "labels": self._labels(repo, issue), "milestone": None, "assignee": None,
            "assignees": [], "requested_reviewers": [], "requested_teams": [],
            "created_at": iso(issue.created_at), "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at), "merged_at": iso(pull.merged_at), "merge_commit_sha": None,
            "draft": pull.draft, "author_association": self.author_association(repo, issue.user),
            "auto_merge": None, "_links": {k: {"href": v} for k, v in links.items()},
            "head": {"label": f"{head_repo.owner}:{pull.head_ref}", "ref": pull.head_ref,
                     "sha": pull.head_sha, "repo": self.repo_json(head_repo),
                     "user": self.user_json(head_repo.owner)},
            "base": {"label": f"{repo.owner}:{pull.base_ref}", "ref": pull.base_ref,
                     "sha": repo.resolve(pull.base_ref) or "", "repo": self.repo_json(repo),
                     "user": self.user_json(repo.owner)},
        }
        if schema == "pull-request":
            base_sha = repo.resolve(pull.base_ref)
            merge_base = repo.merge_base(pull.head_sha, base_sha) if base_sha else None
            files = self.file_diffs(repo, merge_base, pull.head_sha, pull.head_sha)
            data.update({
                "merged": pull.merged, "mergeable": True, "rebaseable": True,
                "mergeable_state": "clean", "merged_by": None, "review_comments": 0,
                "comments": self._comment_count(repo, n),
                "maintainer_can_modify": pull.maintainer_can_modify,
                "commits": len(set(repo.ancestors(pull.head_sha)) - set(repo.ancestors(base_sha or ""))),
                "additions": sum(f["additions"] for f in files),
                "deletions": sum(f["deletions"] for f in files), "changed_files": len(files)})
        return self.contract.build(schema, data)

    def pull_minimal(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        assert issue.pull is not None
        head_repo = self.repo(issue.pull.head_repo, live=True)
        return {"id": issue.id + 100_000_000, "number": issue.number,
                "url": f"{self.api(repo)}/pulls/{issue.number}",
                "head": {"ref": issue.pull.head_ref, "sha": issue.pull.head_sha,
                         "repo": {"id": head_repo.id, "url": self.api(head_repo), "name": head_repo.name}},
                "base": {"ref": issue.pull.base_ref, "sha": repo.resolve(issue.pull.base_ref) or "",
                         "repo": {"id": repo.id, "url": self.api(repo), "name": repo.name}}}

    def comment_json(self, repo: Repo, comment: Comment) -> dict[str, Any]:
        api = f"{self.api(repo)}/issues/comments/{comment.id}"
        issue = repo.issues[comment.issue_number]
        kind = "pull" if issue.pull else "issues"
        rollup = {content: sum(1 for r in comment.reactions if r.content == content)
                  for content in REACTIONS}
        return self.contract.build("issue-comment", {
            "id": comment.id, "node_id": node_id("IssueComment", comment.id), "url": api,
            "html_url": f"{self.html(repo)}/{kind}/{comment.issue_number}#issuecomment-{comment.id}",
            "issue_url": f"{self.api(repo)}/issues/{comment.issue_number}", "body": comment.body,
            "user": self.user_json(comment.user), "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "author_association": self.author_association(repo, comment.user),
            "performed_via_github_app": None,
            "reactions": {"url": f"{api}/reactions", "total_count": len(comment.reactions), **rollup}})

    def reaction_json(self, reaction: Reaction) -> dict[str, Any]:
        return self.contract.build("reaction", {
            "id": reaction.id, "node_id": node_id("Reaction", reaction.id),
            "user": self.user_json(reaction.user), "content": reaction.content,
            "created_at": iso(reaction.created_at)})

    # -- checks, statuses, deployments -----------------------------------------------------------
    def check_run_json(self, repo: Repo, run: CheckRun) -> dict[str, Any]:
        api = f"{self.api(repo)}/check-runs/{run.id}"
        pulls = [self.pull_minimal(repo, i) for i in repo.issues.values()
                 if i.pull and i.state == "open" and i.pull.head_sha == run.head_sha]
        return self.contract.build("check-run", {
            "id": run.id, "node_id": node_id("CheckRun", run.id), "head_sha": run.head_sha,
            "external_id": run.external_id, "url": api, "html_url": f"{self.html(repo)}/runs/{run.id}",
            "details_url": run.details_url, "status": run.status, "conclusion": run.conclusion,
            "started_at": iso(run.started_at), "completed_at": iso(run.completed_at),
            "output": {"title": run.output.get("title"), "summary": run.output.get("summary"),
                       "text": run.output.get("text"), "annotations_count": len(run.annotations),
                       "annotations_url": f"{api}/annotations"},
            "name": run.name, "check_suite": {"id": 7_000_000_000 + run.id % 1_000_000},
            "app": self.app_json(), "pull_requests": pulls})

    def status_json(self, repo: Repo, status: CommitStatus, schema: str = "status") -> dict[str, Any]:
        data = {"url": f"{self.api(repo)}/statuses/{status.sha}",
                "avatar_url": self.user_json(status.creator)["avatar_url"], "id": status.id,
                "node_id": node_id("StatusContext", status.id), "state": status.state,
                "description": status.description, "target_url": status.target_url,
                "context": status.context, "created_at": iso(status.created_at),
                "updated_at": iso(status.created_at)}
        if schema == "status":
            data["creator"] = self.user_json(status.creator)
        return self.contract.build(schema, data)

    def deployment_json(self, repo: Repo, deployment: Deployment) -> dict[str, Any]:
        api = f"{self.api(repo)}/deployments/{deployment.id}"
        return self.contract.build("deployment", {
            "url": api, "id": deployment.id, "node_id": node_id("Deployment", deployment.id),
            "sha": deployment.sha, "ref": deployment.ref, "task": deployment.task,
            "payload": deployment.payload, "original_environment": deployment.environment,
            "environment": deployment.environment, "description": deployment.description,
            "creator": self.user_json(deployment.creator), "created_at": iso(deployment.created_at),
            "updated_at": iso(deployment.statuses[-1].created_at if deployment.statuses
                              else deployment.created_at),
            "statuses_url": f"{api}/statuses", "repository_url": self.api(repo),
            "transient_environment": deployment.transient_environment,
            "production_environment": deployment.production_environment,
            "performed_via_github_app": None})

    def deployment_status_json(self, repo: Repo, status: DeploymentStatus) -> dict[str, Any]:
        api = f"{self.api(repo)}/deployments/{status.deployment_id}"
        return self.contract.build("deployment-status", {
            "url": f"{api}/statuses/{status.id}", "id": status.id,
            "node_id": node_id("DeploymentStatus", status.id), "state": status.state,
            "creator": self.user_json(status.creator), "description": status.description,
            "environment": status.environment, "target_url": status.log_url,
            "log_url": status.log_url, "environment_url": status.environment_url,
            "created_at": iso(status.created_at), "updated_at": iso(status.created_at),
            "deployment_url": api, "repository_url": self.api(repo),
            "performed_via_github_app": None})

    # -- git data -------------------------------------------------------------------------------
    def _person(self, who: dict[str, str]) -> dict[str, Any] | None:
        for user in self._users.values():
            if who["email"] in (user.email, f"{user.login}@users.noreply.github.com"):
                return self.user_json(user.login)
        return None

    def git_commit_json(self, repo: Repo, sha: str) -> dict[str, Any]:
        data = repo.get(sha, "commit")
        return self.contract.build("git-commit", {
            "sha": sha, "node_id": node_id("Commit", sha), "url": f"{self.api(repo)}/git/commits/{sha}",
            "html_url": f"{self.html(repo)}/commit/{sha}", "author": dict(data.author),
            "committer": dict(data.committer), "message": data.message,
            "tree": {"sha": data.tree, "url": f"{self.api(repo)}/git/trees/{data.tree}"},
            "parents": [{"sha": p, "url": f"{self.api(repo)}/git/commits/{p}",
                         "html_url": f"{self.html(repo)}/commit/{p}"} for p in data.parents],
            "verification": {"verified": False, "reason": "unsigned", "signature": None,
                             "payload": None, "verified_at": None}})

    def commit_json(self, repo: Repo, sha: str, files: list[dict] | None = None) -> dict[str, Any]:
        git = self.git_commit_json(repo, sha)
        data = repo.get(sha, "commit")
        commit: dict[str, Any] = {
            "url": f"{self.api(repo)}/commits/{sha}", "sha": sha, "node_id": git["node_id"],
            "html_url": git["html_url"], "comments_url": f"{self.api(repo)}/commits/{sha}/comments",
            "commit": {"url": git["url"], "author": git["author"], "committer": git["committer"],
                       "message": git["message"], "comment_count": 0, "tree": git["tree"],
                       "verification": git["verification"]},
            "author": self._person(data.author), "committer": self._person(data.committer),
            "parents": [{"sha": p["sha"], "url": f"{self.api(repo)}/commits/{p['sha']}",
                         "html_url": p["html_url"]} for p in git["parents"]]}
        if files is not None:
            additions = sum(f["additions"] for f in files)
            deletions = sum(f["deletions"] for f in files)
            commit["stats"] = {"additions": additions, "deletions": deletions,
                               "total": additions + deletions}
            commit["files"] = files
        return self.contract.build("commit", commit)

    def file_diffs(self, repo: Repo, old: str | None, new: str, at: str) -> list[dict[str, Any]]:
        """``diff-entry`` objects for the files that differ between commits ``old`` and ``new``."""
        out = []
        for path, status, before, after in repo.diff(old, new):
            old_text = _text(repo.get(before, "blob") if before else b"")
            new_text = _text(repo.get(after, "blob") if after else b"")
            entry: dict[str, Any] = {
                "sha": after or before, "filename": path, "status": status,
                "blob_url": f"{self.html(repo)}/blob/{at}/{path}",
                "raw_url": f"{self.html(repo)}/raw/{at}/{path}",
                "contents_url": f"{self.api(repo)}/contents/{path}?ref={at}",
                "additions": 0, "deletions": 0, "changes": 0}
            if old_text is not None and new_text is not None:
                lines = list(difflib.unified_diff(old_text.splitlines(), new_text.splitlines(),
                                                  lineterm="", n=3))[2:]
                entry["additions"] = sum(1 for line in lines if line.startswith("+"))
                entry["deletions"] = sum(1 for line in lines if line.startswith("-"))
                entry["patch"] = "\n".join(lines)
            entry["changes"] = entry["additions"] + entry["deletions"]
            out.append(self.contract.build("diff-entry", entry))
        return out

    def git_ref_json(self, repo: Repo, ref: str) -> dict[str, Any]:
        sha = repo.refs[ref]
        return self.contract.build("git-ref", {
            "ref": ref, "node_id": node_id("Ref", ref), "url": f"{self.api(repo)}/git/{ref}",
            "object": {"type": "commit", "sha": sha, "url": f"{self.api(repo)}/git/commits/{sha}"}})

    def git_tree_json(self, repo: Repo, sha: str, recursive: bool) -> dict[str, Any]:
        entries: list[dict[str, Any]] = []

        def walk(tree_sha: str, prefix: str) -> None:
            for e in repo.get(tree_sha, "tree"):
                kind_url = "trees" if e.type == "tree" else "blobs"
                item = {"path": prefix + e.name, "mode": e.mode, "type": e.type, "sha": e.sha,
                        "url": f"{self.api(repo)}/git/{kind_url}/{e.sha}"}
                if e.type == "blob":
                    item["size"] = len(repo.get(e.sha, "blob") or b"")
                entries.append(item)
                if recursive and e.type == "tree":
                    walk(e.sha, prefix + e.name + "/")

        walk(sha, "")
        return self.contract.build("git-tree", {"sha": sha, "url": f"{self.api(repo)}/git/trees/{sha}",
                                                "tree": entries, "truncated": False})

    def content_json(self, repo: Repo, entry: TreeEntry, ref: str, *, with_content: bool,
                     kind: str | None = None) -> dict[str, Any]:
        quoted = urllib.parse.quote(entry.name)
        url = f"{self.api(repo)}/contents/{quoted}?ref={urllib.parse.quote(ref)}"
        is_dir = entry.type == "tree"
        git_url = f"{self.api(repo)}/git/{'trees' if is_dir else 'blobs'}/{entry.sha}"
        html_url = f"{self.html(repo)}/{'tree' if is_dir else 'blob'}/{ref}/{entry.name}"
        data = repo.get(entry.sha, "blob") or b""
        item: dict[str, Any] = {
            "type": "dir" if is_dir else "file", "size": 0 if is_dir else len(data),
            "name": entry.name.rsplit("/", 1)[-1], "path": entry.name, "sha": entry.sha, "url": url,
            "git_url": git_url, "html_url": html_url,
            "download_url": None if is_dir else f"{self.html(repo)}/raw/{ref}/{entry.name}",
            "_links": {"self": url, "git": git_url, "html": html_url}}
        if with_content:
            encoded = base64.b64encode(data).decode()
            item["content"] = "".join(encoded[i:i + 60] + "\n" for i in range(0, len(encoded), 60))
            item["encoding"] = "base64"
        return self.contract.build(kind, item) if kind else item

    def branch_json(self, repo: Repo, name: str) -> dict[str, Any]:
        api = f"{self.api(repo)}/branches/{name}"
        return self.contract.build("branch-with-protection", {
            "name": name, "commit": self.commit_json(repo, repo.refs[f"refs/heads/{name}"]),
            "_links": {"self": api, "html": f"{self.html(repo)}/tree/{name}"},
            "protected": False, "protection": {"enabled": False},
            "protection_url": f"{api}/protection"})


def _text(data: bytes | None) -> str | None:
    if data is None or b"\0" in data:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None

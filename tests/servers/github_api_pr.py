"""Handlers for the conversation side of a pull request: meta (rate limit, user, repository,
branch, collaborators and their permission), commit statuses, check runs, issues, comments,
reactions, labels and pull requests. Creating, editing and listing issues is in
:mod:`github_api_issues`."""

from __future__ import annotations

from typing import Any

from .github_api import ApiBase, ApiError, Ctx, Reply, invalid
from .github_render import REACTIONS
from .github_state import CheckRun, Comment, CommitStatus, Issue, Pull, Reaction, rank

COMMENT_LIMIT = 65536


def permissions(role: str) -> dict[str, bool]:
    """The ``permissions`` object of a collaborator with ``role``."""
    return {"admin": role == "admin", "maintain": rank(role) >= rank("maintain"),
            "push": rank(role) >= rank("write"), "triage": rank(role) >= rank("triage"),
            "pull": rank(role) >= rank("read")}


class PullRequestHandlers(ApiBase):
    """Meta, statuses, check runs, issues, comments, reactions, labels, pull requests."""

    # -- meta -----------------------------------------------------------------------------------
    def rate_limit(self, ctx: Ctx) -> Reply:
        core = self.rate_status(ctx.token)
        other = {"limit": 30, "remaining": 30, "reset": core["reset"], "used": 0}
        graphql = {**core, "used": 0, "remaining": core["limit"]}
        resources = {"core": core, "search": other, "graphql": graphql,
                     "code_search": {**other, "limit": 10, "remaining": 10}}
        return Reply(200, {"resources": resources, "rate": core})

    def get_authenticated(self, ctx: Ctx) -> Reply:
        if not ctx.token.can_get_user:
            raise ApiError(403, "Resource not accessible by integration")
        user = ctx.user
        return Reply(200, self.user_json(user.login, "private-user", name=user.name, email=user.email,
                                         created_at="2020-01-01T00:00:00Z",
                                         updated_at="2020-01-01T00:00:00Z",
                                         user_view_type="private"))

    def get_repo(self, ctx: Ctx) -> Reply:
        return Reply(200, self.repo_json(ctx.need_repo(), "full-repository", role=ctx.role))

    def get_branch(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        if f"refs/heads/{ctx.params['branch']}" not in repo.refs:
            raise ApiError(404, "Branch not found")
        return Reply(200, self.branch_json(repo, ctx.params["branch"]))

    def collaborator_permission(self, ctx: Ctx) -> Reply:
        repo, login = ctx.need_repo(), ctx.params["username"]
        if login.lower() not in self._users:
            raise ApiError(404, f"{login} is not a user")
        role = self.role_of(repo, login)
        permission = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read",
                      "read": "read", "none": "none"}[role]
        user = self.user_json(login, "nullable-collaborator", role_name=role,
                              permissions=permissions(role))
        return Reply(200, {"permission": permission, "role_name": role, "user": user})

    def list_collaborators(self, ctx: Ctx) -> Reply:
        """Direct collaborators (the owner included, as for a user's repository); ``affiliation``
        has nothing to tell apart without organizations."""
        repo = ctx.need_repo()
        if rank(ctx.role) < rank("write"):
            raise ApiError(403, "Resource not accessible by integration" if ctx.user.type == "Bot"
                           else "Must have push access to view repository collaborators.")
        permission = ctx.params.get("permission", "pull")
        wanted = {"pull": "read", "push": "write"}.get(permission, permission)  # a role name
        people = sorted(((self._users[login], role) for login, role in repo.collaborators.items()
                         if rank(role) >= rank(wanted)), key=lambda p: p[0].id)
        page, headers = self.paginate(ctx, people)
        return Reply(200, [self.user_json(user.login, "collaborator", role_name=role,
                                          permissions=permissions(role))
                           for user, role in page], headers)

    # -- statuses and checks --------------------------------------------------------------------
    def create_status(self, ctx: Ctx) -> Reply:
        repo, body = ctx.need_repo(), ctx.body
        sha = repo.resolve(ctx.params["sha"])
        if sha is None or sha != ctx.params["sha"]:
            raise ApiError(422, f"No commit found for SHA: {ctx.params['sha']}")
        if len(body.get("description") or "") > 140:
            raise invalid("Status", "description", "description is too long (maximum is 140 characters)")
        status = CommitStatus(self.next_id("status"), repo.full_name, sha, body["state"],
                              body.get("context", "default"), body.get("description"),
                              body.get("target_url"), ctx.user.login, self.now())
        repo.statuses.setdefault(sha, []).append(status)
        return Reply(201, self.status_json(repo, status),
                     {"Location": f"{self.api(repo)}/statuses/{sha}"})

    def combined_status(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        sha = self.commit_or_422(repo, ctx.params["ref"])
        latest: dict[str, CommitStatus] = {}
        for status in repo.statuses.get(sha, []):
            latest[status.context.lower()] = status
        states = {s.state for s in latest.values()}
        state = ("failure" if states & {"failure", "error"} else
                 "pending" if "pending" in states or not states else "success")
        statuses = sorted(latest.values(), key=lambda s: s.id, reverse=True)
        page, headers = self.paginate(ctx, statuses)
        return Reply(200, {
            "state": state, "sha": sha, "total_count": len(statuses),
            "statuses": [self.status_json(repo, s, "simple-commit-status") for s in page],
            "repository": self.repo_json(repo, "minimal-repository"),
            "commit_url": f"{self.api(repo)}/commits/{sha}",
            "url": f"{self.api(repo)}/commits/{sha}/status"}, headers)

    def _apply_check_fields(self, run: CheckRun, body: dict[str, Any]) -> None:
        for key in ("name", "details_url", "external_id"):
            if key in body:
                setattr(run, key, body[key])
        if "status" in body:
            run.status = body["status"]
        if "started_at" in body:
            run.started_at = self._parse_time(body["started_at"])
        if body.get("conclusion"):
            run.conclusion, run.status = body["conclusion"], "completed"
        if "completed_at" in body:
            run.completed_at = self._parse_time(body["completed_at"])
        if run.status == "completed" and not run.conclusion:
            raise invalid("CheckRun", "conclusion", "conclusion must be given when status is completed",
                          "missing_field")
        if run.status == "completed" and run.completed_at is None:
            run.completed_at = self.now()
        if "output" in body:
            output = body["output"]
            run.output = {k: output.get(k, run.output.get(k)) for k in ("title", "summary", "text")}
            run.annotations.extend(output.get("annotations", []))

    def create_check_run(self, ctx: Ctx) -> Reply:
        repo, body = ctx.need_repo(), ctx.body
        sha = repo.resolve(body["head_sha"])
        if sha is None or sha != body["head_sha"]:
            raise ApiError(422, f"No commit found for SHA: {body['head_sha']}")
        run = CheckRun(self.next_id("check_run"), repo.full_name, body["name"], sha, "queued",
                       None, self.now(), None, None, None, {}, [], ctx.user.login)
        self._apply_check_fields(run, body)
        self._check_runs[run.id] = run
        return Reply(201, self.check_run_json(repo, run))

    def update_check_run(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        run = self._check_runs.get(ctx.params["check_run_id"])
        if run is None or run.repo != repo.full_name:
            raise ApiError(404, "Not Found")
        self._apply_check_fields(run, ctx.body)
        return Reply(200, self.check_run_json(repo, run))

    def list_check_runs(self, ctx: Ctx) -> Reply:
        repo, p = ctx.need_repo(), ctx.params
        sha = self.commit_or_422(repo, p["ref"])
        runs = sorted((r for r in self._check_runs.values()
                       if r.repo == repo.full_name and r.head_sha == sha), key=lambda r: -r.id)
        if p.get("filter", "latest") == "latest":
            newest: dict[str, CheckRun] = {}
            for run in runs:
                newest.setdefault(run.name, run)
            runs = list(newest.values())
        runs = [r for r in runs if ("check_name" not in p or r.name == p["check_name"])
                and ("status" not in p or r.status == p["status"])
                and ("app_id" not in p or p["app_id"] == 15368)]
        page, headers = self.paginate(ctx, runs)
        return Reply(200, {"total_count": len(runs),
                           "check_runs": [self.check_run_json(repo, r) for r in page]}, headers)

    # -- issues and comments ----------------------------------------------------------------------
    def get_issue(self, ctx: Ctx) -> Reply:
        issue = self.issue_or_404(ctx, ctx.params["issue_number"])
        return Reply(200, self.issue_json(ctx.need_repo(), issue))

    def list_comments(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        issue = self.issue_or_404(ctx, ctx.params["issue_number"])
        since = self._parse_time(ctx.params.get("since"))
        comments = [c for c in sorted(self._comments.values(), key=lambda c: c.id)
                    if c.repo == repo.full_name and c.issue_number == issue.number
                    and (since is None or c.updated_at >= since)]
        page, headers = self.paginate(ctx, comments)
        return Reply(200, [self.comment_json(repo, c) for c in page], headers)

    def _check_comment_body(self, body: str) -> None:
        if len(body) > COMMENT_LIMIT:
            raise ApiError(422, "Validation Failed", [{
                "resource": "IssueComment", "code": "unprocessable", "field": "data",
                "message": f"Body is too long (maximum is {COMMENT_LIMIT} characters)"}])

    def create_comment(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        issue = self.issue_or_404(ctx, ctx.params["issue_number"])
        self._check_comment_body(ctx.body["body"])
        if issue.locked and rank(ctx.role) < rank("write"):
            raise ApiError(403, "Unable to create comment because issue is locked.")
        comment = Comment(self.next_id("comment"), repo.full_name, issue.number, ctx.body["body"],
                          ctx.user.login, self.now(), self.now())
        self._comments[comment.id] = comment
        body = self.comment_json(repo, comment)
        return Reply(201, body, {"Location": body["url"]})

    def get_comment(self, ctx: Ctx) -> Reply:
        return Reply(200, self.comment_json(ctx.need_repo(), self.comment_or_404(ctx)))

    def update_comment(self, ctx: Ctx) -> Reply:
        comment = self.comment_or_404(ctx)
        self.require_author_or(ctx, comment.user)
        self._check_comment_body(ctx.body["body"])
        comment.body, comment.updated_at = ctx.body["body"], self.now()
        return Reply(200, self.comment_json(ctx.need_repo(), comment))

    def delete_comment(self, ctx: Ctx) -> Reply:
        comment = self.comment_or_404(ctx)
        self.require_author_or(ctx, comment.user)
        del self._comments[comment.id]
        return Reply(204)

    def create_reaction(self, ctx: Ctx) -> Reply:
        comment = self.comment_or_404(ctx)
        content = ctx.body["content"]
        assert content in REACTIONS
        for reaction in comment.reactions:
            if reaction.user.lower() == ctx.user.login.lower() and reaction.content == content:
                return Reply(200, self.reaction_json(reaction))
        reaction = Reaction(self.next_id("reaction"), content, ctx.user.login, self.now())
        comment.reactions.append(reaction)
        return Reply(201, self.reaction_json(reaction))

    def add_labels(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        issue = self.issue_or_404(ctx, ctx.params["issue_number"])
        body = ctx.body
        names = body if isinstance(body, list) else (body or {}).get("labels", [])
        for item in names:
            label = self.ensure_label(repo, item["name"] if isinstance(item, dict) else item)
            if label.name.lower() not in [n.lower() for n in issue.labels]:
                issue.labels.append(label.name)
        return Reply(200, self._labels(repo, issue))

    def remove_label(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        issue = self.issue_or_404(ctx, ctx.params["issue_number"])
        remaining = [n for n in issue.labels if n.lower() != ctx.params["name"].lower()]
        if len(remaining) == len(issue.labels):
            raise ApiError(404, "Label does not exist")
        issue.labels = remaining
        return Reply(200, self._labels(repo, issue))

    # -- pull requests ----------------------------------------------------------------------------
    def pull_or_404(self, ctx: Ctx) -> Issue:
        issue = ctx.need_repo().issues.get(ctx.params["pull_number"])
        if issue is None or issue.pull is None:
            raise ApiError(404, "Not Found")
        return issue

    def list_pulls(self, ctx: Ctx) -> Reply:
        repo, p = ctx.need_repo(), ctx.params
        pulls = [i for i in repo.issues.values() if i.pull]
        state = p.get("state", "open")
        pulls = [i for i in pulls if state == "all" or i.state == state]
        if "head" in p:
            pulls = [i for i in pulls if f"{i.pull.head_repo.split('/')[0]}:{i.pull.head_ref}".lower()
                     == (p["head"] if ":" in p["head"] else f"{repo.owner}:{p['head']}").lower()]
        if "base" in p:
            pulls = [i for i in pulls if i.pull.base_ref == p["base"]]
        sort = p.get("sort", "created")
        key = (lambda i: i.updated_at) if sort == "updated" else (lambda i: i.created_at)
        descending = p.get("direction", "desc") == "desc"
        pulls.sort(key=lambda i: (key(i), i.number), reverse=descending)
        page, headers = self.paginate(ctx, pulls)
        return Reply(200, [self.pull_json(repo, i, "pull-request-simple") for i in page], headers)

    def get_pull(self, ctx: Ctx) -> Reply:
        return Reply(200, self.pull_json(ctx.need_repo(), self.pull_or_404(ctx)))

    def create_pull(self, ctx: Ctx) -> Reply:
        repo, body = ctx.need_repo(), ctx.body
        owner, _, head_ref = body["head"].rpartition(":")
        head_repo = repo if not owner or owner.lower() == repo.owner.lower() else next(
            (r for r in self._repos.values()
             if r.owner.lower() == owner.lower() and r.parent == repo.full_name), None)
        if f"refs/heads/{body['base']}" not in repo.refs:
            raise invalid("PullRequest", "base", "base is invalid")
        if head_repo is None or f"refs/heads/{head_ref}" not in head_repo.refs:
            raise invalid("PullRequest", "head", "head is invalid")
        if "title" not in body and "issue" not in body:
            raise invalid("PullRequest", "title", "title is required", "missing_field")
        for other in repo.issues.values():
            if (other.pull and other.state == "open" and other.pull.head_repo == head_repo.full_name
                    and other.pull.head_ref == head_ref and other.pull.base_ref == body["base"]):
                raise invalid("PullRequest", "head", "A pull request already exists for "
                              f"{head_repo.owner}:{head_ref}.", "custom")
        issue = self.add_issue(repo.full_name, body.get("title", ""), user=ctx.user.login,
                               body=body.get("body"))
        head_sha = head_repo.refs[f"refs/heads/{head_ref}"]
        issue.pull = Pull(head_ref, head_sha, head_repo.full_name, body["base"],
                          body.get("draft", False), False, body.get("maintainer_can_modify", False))
        repo.refs[f"refs/pull/{issue.number}/head"] = head_sha
        data = self.pull_json(repo, issue)
        return Reply(201, data, {"Location": data["url"]})

    def update_pull(self, ctx: Ctx) -> Reply:
        repo, issue, body = ctx.need_repo(), self.pull_or_404(ctx), ctx.body or {}
        self.require_author_or(ctx, issue.user)
        if "base" in body and f"refs/heads/{body['base']}" not in repo.refs:
            raise invalid("PullRequest", "base", "Proposed base branch was not found")
        issue.title = body.get("title", issue.title)
        issue.body = body.get("body", issue.body)
        issue.pull.base_ref = body.get("base", issue.pull.base_ref)
        issue.pull.maintainer_can_modify = body.get("maintainer_can_modify",
                                                    issue.pull.maintainer_can_modify)
        if body.get("state") and body["state"] != issue.state:
            issue.state = body["state"]
            issue.closed_at = self.now() if issue.state == "closed" else None
        issue.updated_at = self.now()
        return Reply(200, self.pull_json(repo, issue))

    def list_pull_files(self, ctx: Ctx) -> Reply:
        repo, issue = ctx.need_repo(), self.pull_or_404(ctx)
        base = repo.resolve(issue.pull.base_ref)
        merge_base = repo.merge_base(issue.pull.head_sha, base) if base else None
        files = self.file_diffs(repo, merge_base, issue.pull.head_sha, issue.pull.head_sha)
        page, headers = self.paginate(ctx, files)
        return Reply(200, page, headers)

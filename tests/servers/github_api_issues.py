"""Handlers for issues themselves: create, update (title, body, state, labels) and list the issues
of a repository, and list every issue comment of a repository. Reading one issue, its comments
and its labels is in :mod:`github_api_pr`.

Who may do what follows the contract's descriptions: anyone who can read a repository opens an
issue; its author or a user with the triage role or above edits it. Labels are set only by users
with the triage role or above and silently dropped for others (the descriptions say "push
access", but GitHub's triage role applies labels, as ``issues/add-labels`` here asks). Assignees,
milestones, issue types and issue fields do not exist in the state: they are accepted and dropped,
as GitHub drops them for users without push access, and a list filter on them only matches
"none". As on GitHub, pull requests are issues: they share the numbering, ``issues/update`` edits
them and ``issues/list-for-repo`` lists them (with a ``pull_request`` key)."""

from __future__ import annotations

import re
from typing import Any

from .github_api import ApiBase, ApiError, Ctx, Reply, invalid
from .github_state import Repo, rank

ISSUE_BODY_LIMIT = 65536
LABEL_ROLE = "triage"  # the least role whose labels on issues/create and issues/update apply
_NOT_IN_STATE = ("assignee", "milestone", "type")  # list filters: only "none" matches


class IssueHandlers(ApiBase):
    """Create, update and list issues; list a repository's issue comments."""

    def _check_issue(self, repo: Repo, body: dict[str, Any], pull: bool = False) -> None:
        if not repo.has_issues and not pull:
            raise ApiError(410, "Issues are disabled for this repo")
        if "title" in body and body["title"] is not None and not str(body["title"]).strip():
            raise invalid("Issue", "title", "title can't be blank", "missing_field")
        if len(body.get("body") or "") > ISSUE_BODY_LIMIT:
            raise ApiError(422, "Validation Failed", [{
                "resource": "Issue", "code": "custom", "field": "body",
                "message": f"body is too long (maximum is {ISSUE_BODY_LIMIT} characters)"}])

    def _label_names(self, repo: Repo, items: list[Any]) -> list[str]:
        """Label names (strings, or objects by name or id), created in the repository if
        missing, without duplicates."""
        names: list[str] = []
        for item in items:
            name = item
            if isinstance(item, dict):
                name = item.get("name") or next(
                    (label.name for label in repo.labels.values() if label.id == item.get("id")), "")
            if not name.strip():
                raise invalid("Label", "labels", f"{item!r} names no label")
            label = self.ensure_label(repo, name)
            if label.name.lower() not in (n.lower() for n in names):
                names.append(label.name)
        return names

    def create_issue(self, ctx: Ctx) -> Reply:
        repo, body = ctx.need_repo(), ctx.body
        self._check_issue(repo, body)
        labels = (self._label_names(repo, body.get("labels", []))
                  if rank(ctx.role) >= rank(LABEL_ROLE) else [])
        issue = self.add_issue(repo.full_name, str(body["title"]), user=ctx.user.login,
                               body=body.get("body"), labels=labels)
        data = self.issue_json(repo, issue)
        return Reply(201, data, {"Location": data["url"]})

    def update_issue(self, ctx: Ctx) -> Reply:
        repo, body = ctx.need_repo(), ctx.body or {}
        issue = self.issue_or_404(ctx, ctx.params["issue_number"])
        self.require_author_or(ctx, issue.user, "triage")
        self._check_issue(repo, body, pull=issue.pull is not None)
        if body.get("title") is not None:
            issue.title = str(body["title"])
        if "body" in body:
            issue.body = body["body"]
        if "labels" in body and rank(ctx.role) >= rank(LABEL_ROLE):
            issue.labels = self._label_names(repo, body["labels"])
        state, reason = body.get("state") or issue.state, body.get("state_reason")
        if state == "closed":
            if reason == "reopened":
                raise invalid("Issue", "state_reason", "reopened is not a reason to close an issue")
            if issue.state == "open":
                issue.closed_at, issue.state_reason = self.now(), reason or "completed"
            elif reason:
                issue.state_reason = reason
        elif issue.state == "closed":
            issue.closed_at, issue.state_reason = None, "reopened"
        issue.state, issue.updated_at = state, self.now()
        return Reply(200, self.issue_json(repo, issue))

    def list_issues(self, ctx: Ctx) -> Reply:
        repo, p = ctx.need_repo(), ctx.params
        state = p.get("state", "open")
        labels = {n.strip().lower() for n in p.get("labels", "").split(",") if n.strip()}
        since = self._parse_time(p.get("since"))
        mentioned = (re.compile(rf"@{re.escape(p['mentioned'])}\b", re.IGNORECASE)
                     if "mentioned" in p else None)
        found = [i for i in repo.issues.values()
                 if state in ("all", i.state) and labels <= {n.lower() for n in i.labels}
                 and p.get("creator", i.user).lower() == i.user.lower()
                 and (mentioned is None or mentioned.search(i.body or ""))
                 and all(p.get(k, "none") == "none" for k in _NOT_IN_STATE)
                 and "issue_field_values" not in p
                 and (since is None or i.updated_at >= since)]
        sort = p.get("sort", "created")
        found.sort(key=lambda i: (self._comment_count(repo, i.number) if sort == "comments"
                                  else i.updated_at if sort == "updated" else i.created_at, i.number),
                   reverse=p.get("direction", "desc") == "desc")
        page, headers = self.paginate(ctx, found)
        return Reply(200, [self.issue_json(repo, i) for i in page], headers)

    def list_repo_comments(self, ctx: Ctx) -> Reply:
        """By ascending id; ``sort`` orders by time instead (``direction`` default asc)."""
        repo, p = ctx.need_repo(), ctx.params
        since = self._parse_time(p.get("since"))
        comments = [c for c in sorted(self._comments.values(), key=lambda c: c.id)
                    if c.repo == repo.full_name and (since is None or c.updated_at >= since)]
        if "sort" in p:
            comments.sort(key=lambda c: (c.updated_at if p["sort"] == "updated" else c.created_at,
                                         c.id), reverse=p.get("direction", "asc") == "desc")
        page, headers = self.paginate(ctx, comments)
        return Reply(200, [self.comment_json(repo, c) for c in page], headers)

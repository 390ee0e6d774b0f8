"""Shared pieces of the operation handlers: ``ROUTES`` (operationId -> handler method name),
the roles writes need, the handler context and reply types and helpers.

A handler gets a :class:`Ctx` (the matched operation, typed parameters, body, caller, repository
and the caller's role on it) and returns a :class:`Reply` or raises :class:`ApiError`. Auth,
contract validation, the permissions common to all operations, rate limits and faults are dealt
with before a handler runs (see :mod:`github`); the handlers are in :mod:`github_api_pr`,
:mod:`github_api_issues`, :mod:`github_api_git` and :mod:`github_api_teams`. Every operation of the contract is in
``ROUTES`` or in ``NOT_SERVED``, and nothing else is (the server asserts it when it starts)."""

from __future__ import annotations

import math
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .github_contract import Operation
from .github_render import Renderer
from .github_state import Comment, Issue, Repo, Token, User, rank


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.errors, self.headers = status, message, errors, headers or {}


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    op: Operation
    params: dict[str, Any]
    query: dict[str, str]
    body: Any
    token: Token
    user: User
    repo: Repo | None
    role: str
    path: str

    def need_repo(self) -> Repo:
        assert self.repo is not None
        return self.repo


def invalid(resource: str, field_name: str, message: str, code: str = "invalid") -> ApiError:
    return ApiError(422, "Validation Failed",
                    [{"resource": resource, "field": field_name, "code": code, "message": message}])


ROUTES = {
    "rate-limit/get": "rate_limit",
    "users/get-authenticated": "get_authenticated",
    "repos/get": "get_repo",
    "repos/get-branch": "get_branch",
    "repos/get-collaborator-permission-level": "collaborator_permission",
    "repos/list-collaborators": "list_collaborators",
    "repos/get-commit": "get_commit",
    "repos/compare-commits": "compare_commits",
    "repos/get-content": "get_content",
    "repos/create-or-update-file-contents": "put_content",
    "repos/create-commit-status": "create_status",
    "repos/get-combined-status-for-ref": "combined_status",
    "checks/create": "create_check_run",
    "checks/update": "update_check_run",
    "checks/list-for-ref": "list_check_runs",
    "issues/get": "get_issue",
    "issues/create": "create_issue",
    "issues/update": "update_issue",
    "issues/list-for-repo": "list_issues",
    "issues/list-comments-for-repo": "list_repo_comments",
    "issues/list-comments": "list_comments",
    "issues/create-comment": "create_comment",
    "issues/get-comment": "get_comment",
    "issues/update-comment": "update_comment",
    "issues/delete-comment": "delete_comment",
    "issues/add-labels": "add_labels",
    "issues/remove-label": "remove_label",
    "reactions/create-for-issue-comment": "create_reaction",
    "pulls/list": "list_pulls",
    "pulls/get": "get_pull",
    "pulls/create": "create_pull",
    "pulls/update": "update_pull",
    "pulls/list-files": "list_pull_files",
    "pulls/list-reviews": "list_reviews",
    "teams/get-membership-for-user-in-org": "get_team_membership",
    "repos/list-deployments": "list_deployments",
    "repos/get-deployment": "get_deployment",
    "repos/create-deployment": "create_deployment",
    "repos/list-deployment-statuses": "list_deployment_statuses",
    "repos/create-deployment-status": "create_deployment_status",
    "git/create-blob": "create_blob",
    "git/create-tree": "create_tree",
    "git/get-tree": "get_tree",
    "git/create-commit": "create_git_commit",
    "git/get-commit": "get_git_commit",
    "git/get-ref": "get_ref",
    "git/create-ref": "create_ref",
    "git/update-ref": "update_ref",
    "git/delete-ref": "delete_ref",
}

# In the contract but with no handler: answered 501 with a GitHub-shaped error, and recorded in
# ``server.errors`` so that a test whose code starts calling one fails until it gets a handler.
NOT_SERVED: frozenset[str] = frozenset()

# Minimum role for writes; operations missing here need "read" (or authorship, see handlers).
WRITE_ROLE = {
    "checks/create": "write", "checks/update": "write", "repos/create-commit-status": "write",
    "repos/create-or-update-file-contents": "write", "repos/create-deployment": "write",
    "repos/create-deployment-status": "write", "git/create-blob": "write",
    "git/create-tree": "write", "git/create-commit": "write", "git/create-ref": "write",
    "git/update-ref": "write", "git/delete-ref": "write", "issues/add-labels": "triage",
    "issues/remove-label": "triage",
}


def accepted_permissions(op_id: str) -> str:
    """What GitHub names in ``X-Accepted-GitHub-Permissions`` when a token lacks a permission."""
    special = {"repos/create-commit-status": "statuses=write", "issues/create": "issues=write",
               "repos/create-deployment": "deployments=write",
               "repos/create-deployment-status": "deployments=write"}
    by_group = {"checks": "checks=write", "pulls": "pull_requests=write",
                "issues": "issues=write; pull_requests=write",
                "reactions": "issues=write; pull_requests=write"}
    return special.get(op_id) or by_group.get(op_id.split("/")[0], "contents=write")


class ApiBase(Renderer):
    """Helpers shared by the handler mixins (:mod:`github_api_pr`, :mod:`github_api_git`)."""

    # -- helpers --------------------------------------------------------------------------------
    def paginate(self, ctx: Ctx, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        per_page = min(max(int(ctx.params.get("per_page", 30)), 1), 100)
        page = max(int(ctx.params.get("page", 1)), 1)
        last = max(1, math.ceil(len(items) / per_page))
        links = []
        for rel, target in (("prev", page - 1), ("next", page + 1), ("last", last), ("first", 1)):
            if (rel in ("prev", "first") and page > 1) or (rel in ("next", "last") and page < last):
                query = {**ctx.query, "per_page": str(per_page), "page": str(target)}
                links.append(f'<{self.url}{ctx.path}?{urllib.parse.urlencode(query)}>; rel="{rel}"')
        headers = {"Link": ", ".join(links)} if links else {}
        return items[(page - 1) * per_page: page * per_page], headers

    def commit_or_422(self, repo: Repo, ref: str) -> str:
        sha = repo.resolve(ref)
        if sha is None:
            raise ApiError(422, f"No commit found for SHA: {ref}")
        return sha

    def issue_or_404(self, ctx: Ctx, number: int) -> Issue:
        issue = ctx.need_repo().issues.get(number)
        if issue is None:
            raise ApiError(404, "Not Found")
        return issue

    def comment_or_404(self, ctx: Ctx) -> Comment:
        comment = self._comments.get(ctx.params["comment_id"])
        if comment is None or comment.repo != ctx.need_repo().full_name:
            raise ApiError(404, "Not Found")
        return comment

    def require_author_or(self, ctx: Ctx, author: str, role: str = "write") -> None:
        if author.lower() != ctx.user.login.lower() and rank(ctx.role) < rank(role):
            raise ApiError(403, self.forbidden_message(ctx.user))

    @staticmethod
    def forbidden_message(user: User) -> str:
        return ("Resource not accessible by integration" if user.type == "Bot"
                else "Must have push access to this repository.")

    def _parse_time(self, value: str | None) -> datetime | None:
        if not value:
            return None
        moment = datetime.fromisoformat(value)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).replace(microsecond=0)

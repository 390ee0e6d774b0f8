"""Approvers (``policy.approvers``): GitHub users and teams, and whether a pull request carries an
approval from one of them.

A team (``org/team-slug``, GitHub's spelling) is asked about only when the person is not listed by
name, with ``GET /orgs/{org}/teams/{team_slug}/memberships/{username}``: an ``active`` membership
counts, a ``pending`` invitation does not. GitHub answers 404 both when the person is not in the
team and when the token cannot see the team, so a 404 means "not a member" (never "member") and
the refusal says so; a 403 means the token lacks ``members: read`` on the organization, and is an
error that names the fix. The workflow's GITHUB_TOKEN can never be granted ``members: read``, so
teams are read with ``MLOPS_CI_TEAMS_TOKEN`` (a GitHub App installation token or a fine-grained
token) when it is set.

Reviews count as GitHub counts them: per reviewer, the latest review that approves, requests
changes or was dismissed decides (a later COMMENTED review changes nothing). An approval counts
only on the pull request's head commit: mlops-ci replaces its promotion branch's commit when the
proposal changes, and an approval of the earlier content must not ship the later one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_ci.backends.github.client import GitHubError, api_call, error_message

if TYPE_CHECKING:
    from github import Github

TEAMS_TOKEN_ENV = "MLOPS_CI_TEAMS_TOKEN"
DECISIVE = ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")  # review states that replace a reviewer's earlier one
MemberOf = Callable[[str, str], bool]  # (org/team-slug, login) -> an active member
NOT_SEEN_NOTE = ("GitHub answers the same for a team the job's token cannot see: if that is wrong, set "
                 f"{TEAMS_TOKEN_ENV} to a token with `members: read` on the organization")


def team_of(entry: str) -> tuple[str, str] | None:
    """(org, team-slug) of an approver entry that names a team; None for a user's login."""
    org, slash, slug = entry.partition("/")
    return (org, slug) if slash else None


def describe(entries: Iterable[str]) -> str:
    """The approvers for a message (entries are validated logins and slugs: safe to show)."""
    return ", ".join(f"team `{e}`" if team_of(e) else f"`{e}`" for e in entries)


def admitting(entries: Collection[str], login: str, member_of: MemberOf | None) -> str | None:
    """The entry that makes ``login`` an approver (its own login first, then a team it is an
    active member of, asked in the listed order), or None."""
    wanted = login.lower()
    for entry in entries:
        if team_of(entry) is None and entry.lower() == wanted:
            return entry
    if member_of is None:
        return None
    return next((e for e in entries if team_of(e) is not None and member_of(e, login)), None)


class Teams:
    """Team memberships, read through one client and asked once per (team, person) in a run."""

    def __init__(self, client: Callable[[], Github]) -> None:
        self._client = client
        self._made: Github | None = None
        self._known: dict[tuple[str, str], bool] = {}

    def is_member(self, team: str, login: str) -> bool:
        key = (team.lower(), login.lower())
        if key not in self._known:
            self._known[key] = self._ask(team, login)
        return self._known[key]

    def _ask(self, team: str, login: str) -> bool:
        from github import GithubException

        org, slug = team_of(team) or ("", "")
        if self._made is None:
            self._made = self._client().withLazy(True)
        client = self._made
        url = f"{client.requester.base_url.rstrip('/')}/orgs/{org}/teams/{slug}/memberships/{login}"
        with api_call("GET", url):  # a GithubException not handled here becomes GitHubError naming the call
            try:  # PyGithub builds both objects from their URLs: the one request is the membership's
                membership = client.get_organization(org).get_team_by_slug(slug).get_team_membership(login)
            except GithubException as err:
                if err.status == 404:  # not a member, or a team this token cannot see
                    return False
                if err.status == 403 and not _rate_limited(err.headers):
                    raise GitHubError(
                        f"mlops-ci cannot read the members of team {team}: GitHub API GET {url} answered "
                        f"403 {error_message(err)}",
                        hint=f"the job needs a token with `members: read` on the {org} organization: set "
                             f"{TEAMS_TOKEN_ENV} to a GitHub App installation token or a fine-grained token that has "
                             "it (the workflow's GITHUB_TOKEN cannot be granted it), or list the approvers by login"
                    ) from err
                raise
        return membership.state == "active"


def _rate_limited(headers: Mapping[str, Any] | None) -> bool:
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    return lowered.get("x-ratelimit-remaining") == "0" or "retry-after" in lowered


def teams_client(env: Mapping[str, str], fallback: Callable[[], Github]) -> Callable[[], Github]:
    """The client teams are read with: MLOPS_CI_TEAMS_TOKEN when it is set (never logged), else ``fallback``."""
    token = env.get(TEAMS_TOKEN_ENV)
    if not token:
        return fallback

    def make() -> Github:
        from mlops_ci.backends.github.client import make_client

        return make_client(env, token=token)
    return make


@dataclass(frozen=True)
class Approval:
    """Whether a pull request carries an approval from an approver: who approved (and the entry
    that admits them), or why it does not count as approved."""

    pull_request: str | None  # its URL; None when there is no such pull request
    by: str | None = None
    as_entry: str | None = None
    why_not: str = ""

    @property
    def approved(self) -> bool:
        return self.by is not None


def latest_reviews(reviews: Iterable[Any]) -> dict[str, tuple[str, str | None]]:
    """Per reviewer (lowercase login): the state and commit of their latest decisive review, in
    GitHub's chronological order."""
    latest: dict[str, tuple[str, str | None]] = {}
    for review in reviews:
        user = getattr(review.user, "login", None)
        if user and review.state in DECISIVE:
            latest[user.lower()] = (review.state, review.commit_id)
    return latest


def approval_of(pull: Any, entries: Collection[str], member_of: MemberOf | None) -> Approval:
    """Whether ``pull`` (a PyGithub pull request) is approved by one of ``entries`` on its head commit."""
    url, head = pull.html_url, pull.head.sha
    with api_call("GET", f"{pull.url}/reviews"):
        reviews = list(pull.get_reviews())
    logins = {getattr(r.user, "login", "").lower(): getattr(r.user, "login", "") for r in reviews}
    latest = latest_reviews(reviews)
    stale, others = [], []
    for key, (state, commit) in latest.items():
        if state != "APPROVED":
            continue
        login = logins[key]
        entry = admitting(entries, login, member_of)
        if entry is None:
            others.append(login)
        elif commit != head:
            stale.append(login)
        else:
            return Approval(url, by=login, as_entry=entry)
    why = f"{url} has no approving review from an approver ({describe(entries)})"
    if stale:
        why += f"; {', '.join(stale)} approved an earlier commit, not its head {head[:12]}"
    if others:
        why += f"; {', '.join(others)} approved it but {'is' if len(others) == 1 else 'are'} not an approver"
    if any(s == "CHANGES_REQUESTED" for s, _ in latest.values()):
        changes = sorted(logins[k] for k, (s, _) in latest.items() if s == "CHANGES_REQUESTED")
        why += f"; changes requested by {', '.join(changes)} (their latest review)"
    return Approval(url, why_not=why)


__all__ = ["TEAMS_TOKEN_ENV", "Approval", "Teams", "admitting", "approval_of", "describe", "latest_reviews",
           "team_of", "teams_client"]

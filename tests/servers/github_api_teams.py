"""Handlers for pull-request reviews and organizations' team memberships, with their seeding.

Who may read a team membership, as GitHub decides it: an app's token (a ``Bot``, as the workflow's
GITHUB_TOKEN is) only with ``members: read`` on the organization (:meth:`grant_members_read`),
else 403 "Resource not accessible by integration" naming ``members=read``; a person's token only
when the person is a member of the organization (any of its teams), else 404, as for a team that
does not exist. A person who is not in the team is a 404 as well; a pending invitation answers
200 with ``state: pending``.

Reviews are listed in the order they were submitted (GitHub's chronological order); PENDING
reviews are never listed (they are their author's draft). A pull request is merged with
:meth:`merge_pull`, which only marks it (a git-backed repository's branch is moved with git)."""

from __future__ import annotations

from .github_api import ApiBase, ApiError, Ctx, Reply
from .github_render import node_id
from .github_state import Issue, Repo, Review, Team, iso

REVIEW_STATES = ("APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED")
TEAM_ROLES = ("member", "maintainer")


class TeamHandlers(ApiBase):
    # -- seeding --------------------------------------------------------------------------------
    def add_team(self, team: str, *, members: tuple[str, ...] | list[str] = (),
                 maintainers: tuple[str, ...] | list[str] = (),
                 pending: tuple[str, ...] | list[str] = ()) -> Team:
        """Team ``org/slug`` with its active members and maintainers and its pending invitations;
        each of them is a member of the organization (may see its teams)."""
        org, slug = team.split("/")
        with self._lock:
            self.add_user(org, type="Organization")
            found = self._teams.get(team.lower())
            if found is None:
                found = Team(self.next_id("team"), org, slug)
                self._teams[team.lower()] = found
            for logins, role, state in ((members, "member", "active"), (maintainers, "maintainer", "active"),
                                        (pending, "member", "pending")):
                for login in logins:
                    self.add_user(login)
                    found.members[login.lower()] = (role, state)
                    if state == "active":
                        self._org_members.setdefault(org.lower(), set()).add(login.lower())
            return found

    def grant_members_read(self, org: str, login: str) -> None:
        """Give the app whose token authenticates as ``login`` (a Bot) ``members: read`` on ``org``."""
        with self._lock:
            self._members_readers.setdefault(org.lower(), set()).add(login.lower())

    def add_review(self, full_name: str, number: int, user: str, state: str = "APPROVED", *,
                   commit_id: str | None = None, body: str = "") -> Review:
        """A submitted review of pull request ``number`` (on its head commit unless ``commit_id``)."""
        assert state in REVIEW_STATES, state
        with self._lock:
            issue = self.repo(full_name, live=True).issues[number]
            assert issue.pull is not None, f"#{number} is not a pull request"
            self.add_user(user)
            review = Review(self.next_id("review"), user, state, commit_id or issue.pull.head_sha, body, self.now())
            issue.pull.reviews.append(review)
            return review

    def merge_pull(self, full_name: str, number: int) -> None:
        """Mark pull request ``number`` merged and closed now."""
        with self._lock:
            issue = self.repo(full_name, live=True).issues[number]
            assert issue.pull is not None, f"#{number} is not a pull request"
            issue.pull.merged, issue.pull.merged_at = True, self.now()
            issue.state, issue.closed_at, issue.updated_at = "closed", self.now(), self.now()

    # -- handlers -------------------------------------------------------------------------------
    def get_team_membership(self, ctx: Ctx) -> Reply:
        org, slug, login = ctx.params["org"], ctx.params["team_slug"], ctx.params["username"]
        caller = ctx.user.login.lower()
        if ctx.user.type == "Bot":
            if caller not in self._members_readers.get(org.lower(), set()):
                raise ApiError(403, "Resource not accessible by integration",
                               headers={"X-Accepted-GitHub-Permissions": "members=read"})
        elif caller not in self._org_members.get(org.lower(), set()):
            raise ApiError(404, "Not Found")  # GitHub does not say whether the team exists
        team = self._teams.get(f"{org}/{slug}".lower())
        membership = team.members.get(login.lower()) if team else None
        if team is None or membership is None:
            raise ApiError(404, "Not Found")
        role, state = membership
        org_id = self._users[org.lower()].id
        url = f"{self.url}/organizations/{org_id}/team/{team.id}/memberships/{login}"
        return Reply(200, self.contract.build("team-membership", {"url": url, "role": role, "state": state}))

    def list_reviews(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        issue = repo.issues.get(ctx.params["pull_number"])
        if issue is None or issue.pull is None:
            raise ApiError(404, "Not Found")
        page, headers = self.paginate(ctx, issue.pull.reviews)
        return Reply(200, [self.review_json(repo, issue, r) for r in page], headers)

    def review_json(self, repo: Repo, issue: Issue, review: Review) -> dict:
        html = f"{self.html(repo)}/pull/{issue.number}#pullrequestreview-{review.id}"
        pull_api = f"{self.api(repo)}/pulls/{issue.number}"
        return self.contract.build("pull-request-review", {
            "id": review.id, "node_id": node_id("PullRequestReview", review.id), "user": self.user_json(review.user),
            "body": review.body, "state": review.state, "commit_id": review.commit_id, "html_url": html,
            "pull_request_url": pull_api, "_links": {"html": {"href": html}, "pull_request": {"href": pull_api}},
            "author_association": self.author_association(repo, review.user),
            "submitted_at": iso(review.submitted_at)})

"""The monitoring issue of a model in an environment, on GitHub: one per pair, found again by the
hidden marker at the start of its body and its label, never by its title (anyone can open an
issue with any title).

:func:`sync` creates it on the first finding, updates it in place on every run, reopens it on new
drift and closes it with a comment when the latest window recovers. A window with too little
traffic neither opens nor closes it. The writes go through
:func:`~mlops_ci.backends.github.client.write_once`: a create after a 5xx looks for the issue
before sending it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_ci.backends.github.client import api_call, write_once

if TYPE_CHECKING:
    from github import Github
    from github.Issue import Issue


@dataclass(frozen=True)
class Synced:
    action: str  # created | updated | reopened | closed | none
    number: int | None = None
    url: str | None = None


class MonitoringIssues:
    """The monitoring issues of one repository (``owner/name``)."""

    def __init__(self, client: Github, repository: str) -> None:
        self.repository = repository
        self.base = client.requester.base_url.rstrip("/")
        self.repo = client.withLazy(True).get_repo(repository)

    def find(self, marker: str, label: str) -> Issue | None:
        """The issue whose body starts with ``marker`` and that carries ``label`` (open or closed;
        the most recently updated if several do). Pull requests are not issues here."""
        with api_call("GET", f"{self.base}/repos/{self.repository}/issues"):
            found = [i for i in self.repo.get_issues(state="all", labels=[label], sort="updated", direction="desc")
                     if i.pull_request is None and (i.body or "").startswith(marker)]
        return found[0] if found else None

    def sync(self, *, marker: str, label: str, title: str, body: str, finding: bool, recovered: bool,
             recovered_comment: str) -> Synced:
        """Bring the issue in line with a run: ``finding`` (drift at warn or fail, a metric below its
        gate), ``recovered`` (the latest window passed)."""
        issue = self.find(marker, label)
        path = f"{self.base}/repos/{self.repository}/issues"
        if issue is None:
            if not finding:
                return Synced("none")
            with api_call("POST", path):
                created = write_once(lambda: self.repo.create_issue(title=title, body=body, labels=[label]),
                                     lambda: self.find(marker, label))
            return Synced("created", created.number, created.html_url)
        where = f"{path}/{issue.number}"
        if issue.state == "closed":
            if not finding:
                return Synced("none", issue.number, issue.html_url)
            with api_call("PATCH", where):
                issue.edit(body=body, state="open")
            return Synced("reopened", issue.number, issue.html_url)
        with api_call("PATCH", where):
            issue.edit(body=body)
        if recovered and not finding:
            with api_call("POST", f"{where}/comments"):
                write_once(lambda: issue.create_comment(recovered_comment),
                           lambda: next((c for c in issue.get_comments() if c.body == recovered_comment), None))
            with api_call("PATCH", where):
                issue.edit(state="closed", state_reason="completed")
            return Synced("closed", issue.number, issue.html_url)
        return Synced("updated", issue.number, issue.html_url)


__all__ = ["MonitoringIssues", "Synced"]

"""The GitOps remote role: read the current files and their history, commit and push a change."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class HistoryEntry:
    """One commit of the branch's mainline (first parents) that changed some of the paths asked about."""

    sha: str
    parent: str | None  # the first parent (None: a root commit)
    subject: str
    trailers: tuple[tuple[str, str], ...]  # (key, value) in order, as git parses them
    paths: tuple[str, ...]  # of the paths asked about, the files this commit changed
    committed: int = 0  # the commit's time (Unix seconds)

    def trailer(self, key: str) -> str | None:
        """The last value of trailer ``key`` (case-insensitive), or None."""
        values = [v for k, v in self.trailers if k.lower() == key.lower()]
        return values[-1] if values else None


class Checkout(Protocol):
    head: str | None  # the commit the checkout is at (None: the branch does not exist yet)
    # after commit_and_push: the URL of the pull request that proposes the commit (a checkout whose
    # commits are proposed, not pushed to the branch: promote --via-pr); None for a direct push
    proposal: str | None

    @property
    def branch(self) -> str:
        """The branch its commits land on (the GitOps branch, or a proposal's own branch)."""

    @property
    def workdir(self) -> Path | None:
        """The working copy on disk (kustomize builds the manifests there), if there is one."""

    def read(self, path: str) -> bytes | None: ...

    def write(self, files: dict[str, bytes | None]) -> None:
        """Write ``files`` into the working copy (None deletes one); a path outside it is refused."""

    def show(self, rev: str, path: str) -> bytes | None:
        """The bytes of ``path`` at commit ``rev``; None if it did not exist there."""

    def log(self, paths: Sequence[str], *, exclude: Sequence[str] = ()) -> list[HistoryEntry]:
        """Commits up to ``head`` that changed files at or under ``paths`` (minus ``exclude``), newest first."""

    def commit_and_push(self, files: dict[str, bytes | None], message: str) -> str:
        """Write ``files`` (None deletes one), commit with ``message``, push; returns the pushed commit's sha."""


class GitOpsRemote(Protocol):
    url: str
    branch: str

    def check(self) -> None:
        """Raise BackendError (saying how to create or configure it) unless the remote answers and
        either has the branch or is empty (the first promotion creates the branch)."""

    def checkout(self) -> AbstractContextManager[Checkout]:
        """A fresh working copy at the tip of the branch, removed afterwards."""

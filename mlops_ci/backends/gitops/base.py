"""The GitOps remote role: read the current files, commit and push a change."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class Checkout(Protocol):
    head: str | None  # the commit the checkout is at (None: the branch does not exist yet)

    def read(self, path: str) -> bytes | None: ...

    def commit_and_push(self, files: dict[str, bytes], message: str) -> str:
        """Write ``files``, commit with ``message``, push; returns the pushed commit's sha."""


class GitOpsRemote(Protocol):
    url: str
    branch: str

    def checkout(self) -> AbstractContextManager[Checkout]:
        """A fresh working copy at the tip of the branch, removed afterwards."""

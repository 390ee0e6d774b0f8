"""A change set: the files one GitOps write sets, planned against a checkout's tip, then validated,
stopped at a dry run, or committed with its message and trailers.

Every write to the GitOps repository goes through it (promote, rollback, clearing a hold,
declared promotions, ``--via-pr``): one diff, one validation hook, one commit path. Whether the
write is allowed at all is the policy's decision (mlops_ci.policy), made before this runs.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from mlops_ci.backends.gitops.base import Checkout
from mlops_ci.records import FileChange


def diff(path: str, old: bytes | None, new: bytes | None) -> str:
    """A unified diff of one file (``None``: the file does not exist on that side)."""
    a = [] if old is None else old.decode("utf-8", "replace").splitlines(keepends=True)
    b = [] if new is None else new.decode("utf-8", "replace").splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, fromfile="/dev/null" if old is None else f"a/{path}",
                                        tofile="/dev/null" if new is None else f"b/{path}"))


def change(path: str, old: bytes | None, new: bytes | None) -> FileChange:
    if old == new:
        return FileChange(path=path, action="unchanged")
    return FileChange(path=path, action="create" if old is None else "delete" if new is None else "modify",
                      diff=diff(path, old, new))


@dataclass(frozen=True)
class ChangeSet:
    """What a write would set (``None`` deletes a file), as planned on ``base``."""

    files: dict[str, bytes | None]
    changes: list[FileChange]  # one per file, in order, unchanged ones included
    base: str | None  # the checkout's tip it was planned on (None: the branch does not exist yet)

    @property
    def touched(self) -> dict[str, bytes | None]:
        return {c.path: self.files[c.path] for c in self.changes if c.action != "unchanged"}

    @property
    def noop(self) -> bool:
        return not self.touched


def plan(co: Checkout, files: dict[str, bytes | None]) -> ChangeSet:
    """The change set that makes ``files`` what they are in ``files``, against ``co``'s tip."""
    return ChangeSet(files=dict(files), changes=[change(p, co.read(p), data) for p, data in files.items()],
                     base=co.head)


Validator = Callable[[dict[str, bytes | None], Checkout], None]


def apply(co: Checkout, cs: ChangeSet, message: Callable[[], str], *, validate: Validator | None = None,
          dry_run: bool = False) -> str | None:
    """Validate what ``cs`` touches (an invalid manifest is never committed, and a dry run reports
    it the same way), stop at a dry run, else commit and push it. Returns the commit the branch
    (or, for a proposal, the pull request's branch) is at afterwards: ``co``'s tip when nothing
    changed, None after a dry run that would change something."""
    touched = cs.touched
    if touched and validate is not None:
        validate(touched, co)
    if not touched:
        return co.head
    if dry_run:
        return None
    return co.commit_and_push(touched, message())


__all__ = ["ChangeSet", "Validator", "apply", "change", "diff", "plan"]

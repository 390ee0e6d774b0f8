"""Context from a local git checkout: base = merge-base with the default branch, head = HEAD."""

from __future__ import annotations

from pathlib import Path

from mlops_ci import gitutil
from mlops_ci.errors import GitError
from mlops_ci.records import Context


def local_context(root: Path, *, default_branch: str) -> Context:
    top = gitutil.toplevel(root)
    head = gitutil.rev_parse("HEAD", top)
    if head is None:
        raise GitError(f"{top} has no commits yet", hint="commit your files first (git commit)")
    branch = gitutil.git(["symbolic-ref", "--quiet", "--short", "HEAD"], top, check=False).stdout.strip() or None
    base_ref = None
    for candidate in (default_branch, f"origin/{default_branch}"):
        if gitutil.rev_parse(candidate, top):
            base_ref = candidate
            break
    base = None
    if base_ref is not None:
        proc = gitutil.git(["merge-base", base_ref, "HEAD"], top, check=False)
        base = proc.stdout.strip() or None
    if base == head:
        # On the default branch itself: compare with the previous commit.
        base = gitutil.rev_parse("HEAD~1", top)
    remote_url = gitutil.git(["remote", "get-url", "origin"], top, check=False).stdout.strip()
    actor = gitutil.git(["config", "user.name"], top, check=False).stdout.strip() or None
    dirty = bool(gitutil.git(["status", "--porcelain", "--untracked-files=no"], top, check=False).stdout.strip())
    return Context(
        source="local",
        event="local",
        repository=_repo_slug(remote_url),
        default_branch=default_branch,
        base_sha=base,
        head_sha=head,
        ref=branch,
        actor=actor,
        dirty=dirty,
    )


def _repo_slug(url: str) -> str | None:
    """owner/name from a GitHub-style remote URL, else None."""
    if not url:
        return None
    tail = url.rstrip("/").removesuffix(".git")
    for sep in ("github.com/", "github.com:"):
        if sep in tail:
            slug = tail.split(sep, 1)[1]
            if slug.count("/") == 1:
                return slug
    return None

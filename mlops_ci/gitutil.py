"""Running git: argument lists only (never a shell), errors turned into GitError."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlops_ci.errors import GitError
from mlops_ci.masking import mask

# Keep git from asking questions or reading the user's global hooks in automation.
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "true",
    "LC_ALL": "C",
}


def git(
    args: Sequence[str],
    cwd: Path,
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **_GIT_ENV, **(env or {})}
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                              encoding="utf-8", errors="replace", input=input_text)
    except FileNotFoundError as err:
        raise GitError("git is not installed or not on PATH", hint="install git") from err
    if check and proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        err_text = mask(lines[-1]) if lines else "no output"
        raise GitError(f"`git {' '.join(args[:3])}` failed in {cwd}: {err_text}")
    return proc


def out(args: Sequence[str], cwd: Path) -> str:
    return git(args, cwd).stdout.strip()


def toplevel(path: Path) -> Path:
    proc = git(["rev-parse", "--show-toplevel"], path, check=False)
    if proc.returncode != 0:
        raise GitError(f"{path} is not inside a git repository",
                       hint="run mlops-ci from a git checkout (git init; git commit)")
    return Path(proc.stdout.strip())


def rev_parse(rev: str, cwd: Path) -> str | None:
    proc = git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd, check=False)
    return proc.stdout.strip() or None


def show_file(rev: str, path: str, cwd: Path) -> bytes | None:
    """The bytes of ``path`` (relative to the repository top) at ``rev``; None if absent."""
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=cwd, capture_output=True,
                          env={**os.environ, **_GIT_ENV})
    if proc.returncode != 0:
        return None
    return proc.stdout


def changed_paths(base: str, head: str, cwd: Path) -> list[str]:
    """Paths (relative to the repository top) that differ between two commits."""
    text = out(["diff", "--name-only", "--no-renames", "-z", base, head], cwd)
    return [p for p in text.split("\0") if p]


def is_ancestor(ancestor: str, descendant: str, cwd: Path) -> bool:
    return git(["merge-base", "--is-ancestor", ancestor, descendant], cwd, check=False).returncode == 0


def is_under(path: str, prefix: str) -> bool:
    """Whether repository path ``path`` is ``prefix`` or inside it ("" and "." hold everything)."""
    prefix = prefix.rstrip("/")
    return prefix in ("", ".") or path == prefix or path.startswith(prefix + "/")

"""Materialize a tracked data file at a revision as a local file that can be streamed.

Head side: the work-tree file, verified against the md5 recorded in git (a mismatch means
the user forgot `dvc add` or `dvc checkout`). Base side: the DVC cache entry if it is
there, else DVC fetches it through `DVCFileSystem(rev=...)` from the configured remote.
"""

from __future__ import annotations

from pathlib import Path

from mlops_ci import gitutil
from mlops_ci.data.versions import TrackedFile, file_md5
from mlops_ci.errors import BackendError, DataError


def worktree_file(top: Path, tracked: TrackedFile) -> Path:
    """The checked-out file for ``tracked``, refusing one whose content differs from git's record."""
    local = top / tracked.path
    if not local.is_file():
        hint = f"run `dvc pull {tracked.path}`" if tracked.dvc else "check out the file"
        raise DataError(f"{tracked.path}: data file is missing from the work tree", hint=hint)
    if tracked.dvc and file_md5(local) != tracked.md5:
        raise DataError(
            f"{tracked.path}: the file differs from the version recorded in {tracked.path}.dvc "
            f"(md5 {tracked.md5})",
            hint=f"run `dvc add {tracked.path}` and commit, or `dvc checkout {tracked.path}`",
        )
    return local


def revision_file(top: Path, rev: str, tracked: TrackedFile, cache_dir: Path) -> Path:
    """A local copy of ``tracked`` as of ``rev`` (cached by content hash under ``cache_dir``)."""
    if not tracked.dvc:
        dest = cache_dir / "git" / tracked.hash.removeprefix("git:")
        if not dest.exists():
            data = gitutil.show_file(rev, tracked.path, top)
            if data is None:
                raise DataError(f"{tracked.path}: not found at revision {rev[:12]}")
            _atomic_write(dest, data)
        return dest
    md5 = tracked.md5 or ""
    for candidate in (top / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:],
                      top / ".dvc" / "cache" / md5[:2] / md5[2:]):
        if candidate.is_file():
            return candidate
    dest = cache_dir / "dvc" / md5
    if dest.is_file():
        return dest
    try:
        from dvc.api import DVCFileSystem

        fs = DVCFileSystem(str(top), rev=rev)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        fs.get_file(tracked.path, str(tmp))
        tmp.replace(dest)
    except Exception as err:  # DVC raises many unrelated types for a missing remote object
        raise BackendError(
            f"{tracked.path}@{rev[:12]}: DVC could not fetch md5 {md5} ({type(err).__name__}: {err})",
            hint="check the DVC remote (`dvc remote list`) and that the base branch's data was pushed (`dvc push`)",
        ) from err
    return dest


def _atomic_write(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(dest)


__all__ = ["file_md5", "revision_file", "worktree_file"]

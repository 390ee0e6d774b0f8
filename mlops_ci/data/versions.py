"""Which content a data path has at a git revision: the DVC md5 from its `.dvc` file or
`dvc.lock`, or the git blob id for data committed to git. Read from git objects, so no DVC
import and no checkout is needed to compare base and head. The same ids for the work tree as
it is (:func:`worktree_tracked`): what a training on this machine reads."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops_ci import gitutil

_CHUNK = 1 << 20
Reader = Callable[[str], bytes | None]


@dataclass(frozen=True)
class TrackedFile:
    path: str  # relative to the repository top
    hash: str  # "md5:<hex>" (DVC) or "git:<blob sha>"
    dvc: bool

    @classmethod
    def from_hash(cls, path: str, value: str | None) -> TrackedFile | None:
        """Rebuild from a recorded content id ("md5:..." or "git:..."); None stays None."""
        return None if value is None else cls(path, value, dvc=value.startswith("md5:"))

    @property
    def md5(self) -> str | None:
        return self.hash.removeprefix("md5:") if self.dvc else None


def _yaml(data: bytes):
    from ruamel.yaml import YAML

    try:
        return YAML(typ="safe").load(data.decode("utf-8"))
    except Exception:  # a broken .dvc file at some old revision is treated as untracked
        return None


def _md5_of(outs, name: str) -> str | None:
    for out in outs or []:
        if isinstance(out, dict) and posixpath.normpath(str(out.get("path", ""))) == name:
            md5 = out.get("md5")
            return str(md5) if md5 else None
    return None


def dvc_md5(read: Reader, path: str) -> str | None:
    """The md5 DVC records for ``path`` (its `.dvc` file, or a `dvc.lock` in its folder or above),
    reading files through ``read``; None if DVC does not track it."""
    path = posixpath.normpath(path)
    folder, name = posixpath.split(path)
    dvc_file = read(f"{path}.dvc")
    if dvc_file is not None:
        doc = _yaml(dvc_file)
        md5 = _md5_of((doc or {}).get("outs"), name) if isinstance(doc, dict) else None
        if md5:
            return md5
    # outputs of DVC pipelines: dvc.lock in the same folder or above
    parts = folder.split("/") if folder else []
    for depth in range(len(parts), -1, -1):
        lock_dir = "/".join(parts[:depth])
        lock = read(posixpath.join(lock_dir, "dvc.lock") if lock_dir else "dvc.lock")
        if lock is None:
            continue
        doc = _yaml(lock)
        rel = posixpath.relpath(path, lock_dir or ".")
        for stage in ((doc or {}).get("stages") or {}).values() if isinstance(doc, dict) else ():
            md5 = _md5_of((stage or {}).get("outs"), rel) if isinstance(stage, dict) else None
            if md5:
                return md5
    return None


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def blob_id(path: Path) -> str:
    """The git blob id of a file's bytes (what `git hash-object` prints, without filters)."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_worktree(top: Path) -> Reader:
    def read(rel: str) -> bytes | None:
        full = top / rel
        return full.read_bytes() if full.is_file() else None
    return read


def worktree_tracked(top: Path, path: str) -> TrackedFile | None:
    """The content id of ``path`` as the work tree has it: the md5 of its bytes where DVC tracks it
    (the recorded md5 if the file is not checked out), else the git blob id of its bytes; None if
    it is neither there nor tracked."""
    path = posixpath.normpath(path)
    local = top / path
    recorded = dvc_md5(read_worktree(top), path)
    if recorded is not None:
        return TrackedFile(path, f"md5:{file_md5(local) if local.is_file() else recorded}", dvc=True)
    return TrackedFile(path, f"git:{blob_id(local)}", dvc=False) if local.is_file() else None


def tracked_file(top: Path, rev: str, path: str) -> TrackedFile | None:
    """The content id of ``path`` at ``rev``, or None if it does not exist there."""
    path = posixpath.normpath(path)
    md5 = dvc_md5(lambda rel: gitutil.show_file(rev, rel, top), path)
    if md5:
        return TrackedFile(path, f"md5:{md5}", dvc=True)
    proc = gitutil.git(["rev-parse", "--verify", "--quiet", f"{rev}:{path}"], top, check=False)
    blob = proc.stdout.strip()
    if proc.returncode == 0 and blob:
        return TrackedFile(path, f"git:{blob}", dvc=False)
    return None

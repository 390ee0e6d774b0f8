"""Where checkpoints live: a local (or mounted shared) directory, or an fsspec URL.

Both stores offer the same few operations the Checkpointer needs, plus the DCP writer and reader
for a checkpoint directory. A local directory writes into a temporary name and renames it into
place; an fsspec URL (``s3://``, ``gs://``, ``file://``...) writes in place, since renaming a
directory on an object store copies every file. Either way a checkpoint counts only once its
completion marker exists.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the whole new one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


class Store(Protocol):
    uri: str
    renames: bool  # write to a temporary name, then rename into place

    def join(self, *parts: str) -> str: ...
    def list_names(self) -> list[str]: ...
    def exists(self, path: str) -> bool: ...
    def write_text(self, path: str, text: str) -> None: ...
    def remove(self, path: str) -> None: ...
    def remove_tree(self, path: str) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...
    def writer(self, path: str): ...
    def reader(self, path: str): ...


class LocalStore:
    renames = True

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.uri = str(self.root)

    def join(self, *parts: str) -> str:
        return str(self.root.joinpath(*parts))

    def list_names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir())

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def write_text(self, path: str, text: str) -> None:
        atomic_write_text(path, text)

    def remove(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)

    def remove_tree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def writer(self, path: str):
        from torch.distributed.checkpoint import FileSystemWriter

        return FileSystemWriter(path)

    def reader(self, path: str):
        from torch.distributed.checkpoint import FileSystemReader

        return FileSystemReader(path)


class FsspecStore:
    renames = False

    def __init__(self, uri: str) -> None:
        from fsspec.core import url_to_fs

        self.uri = uri.rstrip("/")
        self.fs, self.root = url_to_fs(self.uri)

    def join(self, *parts: str) -> str:
        return "/".join([self.uri, *parts])

    def _path(self, url: str) -> str:
        from fsspec.core import url_to_fs

        return url_to_fs(url)[1]

    def list_names(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.root, detail=False))

    def exists(self, path: str) -> bool:
        return self.fs.exists(self._path(path))

    def write_text(self, path: str, text: str) -> None:
        self.fs.makedirs(self._path(path).rsplit("/", 1)[0], exist_ok=True)  # a no-op on object stores
        with self.fs.open(self._path(path), "w") as fh:  # object stores publish an object whole on close
            fh.write(text)

    def remove(self, path: str) -> None:
        if self.fs.exists(self._path(path)):
            self.fs.rm_file(self._path(path))

    def remove_tree(self, path: str) -> None:
        if self.fs.exists(self._path(path)):
            self.fs.rm(self._path(path), recursive=True)

    def rename(self, src: str, dst: str) -> None:
        self.fs.mv(self._path(src), self._path(dst), recursive=True)

    def writer(self, path: str):
        from torch.distributed.checkpoint._fsspec_filesystem import FsspecWriter

        return FsspecWriter(path)

    def reader(self, path: str):
        from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader

        return FsspecReader(path)


def open_store(uri: str | os.PathLike) -> Store:
    """A LocalStore for a plain path, an FsspecStore for a ``scheme://`` URL (``file://`` included)."""
    text = os.fspath(uri)
    if "://" in text:
        return FsspecStore(text)
    return LocalStore(text)

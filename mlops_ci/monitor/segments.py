"""Payload-log entries buffered into segments, each written durably in KServe's storage layout.

The receiver's memory and durability half (:mod:`.receiver` is the HTTP half). :class:`Buffer`
holds entries per (namespace, inference service, component), at most ``batch_bytes`` bytes plus
one entry (an adder waits while it is full), and a flusher thread writes a batch when it holds
``batch_events`` entries or ``batch_bytes`` bytes, or ``flush_interval_s`` after its first
entry. Each group becomes one object through :func:`mlops_ci.monitor.store.write_batch`
(temporary name, fsync, rename); :class:`SegmentWriter` then fsyncs the folder (and the folders
it created), and only then sets the segment's ``done``: whoever waits on it may acknowledge.

An object is never overwritten: a segment is named after an entry whose object does not exist
yet, and when the sender reused every id, it goes to a fresh ``dup-<uuid>`` sub-folder (which
:func:`mlops_ci.monitor.logs.read_objects` finds like any other). One writer per root.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from mlops_ci.monitor.logs import Entry
from mlops_ci.monitor.store import object_path, write_batch

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Segment:
    """One group's entries in a batch; ``done`` is set once its object is durable (``path``) or failed (``error``)."""

    namespace: str
    entries: list[Entry] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    path: Path | None = None
    error: str | None = None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentWriter:
    """Writes a segment durably under ``root``, named after an entry whose object does not exist yet."""

    def __init__(self, root: Path, *, marshaller: str = "json", store_path: str = "") -> None:
        self.root, self.marshaller, self.store_path = root, marshaller, store_path
        self._synced: set[Path] = set()  # folders whose own entry is durable in their parent

    def _named_after_a_free_entry(self, seg: Segment) -> list[Entry] | None:
        for i, e in enumerate(seg.entries):
            if not object_path(self.root, e, namespace=seg.namespace, store_path=self.store_path,
                               marshaller=self.marshaller).exists():
                return [e, *seg.entries[:i], *seg.entries[i + 1:]]
        return None

    def write(self, seg: Segment) -> Path:
        store_path, entries = self.store_path, self._named_after_a_free_entry(seg)
        if entries is None:  # every name is taken: never overwrite what was acknowledged
            store_path, entries = "/".join(p for p in (store_path, f"dup-{uuid.uuid4().hex}") if p), seg.entries
        path = write_batch(self.root, entries, namespace=seg.namespace, store_path=store_path,
                           marshaller=self.marshaller)
        fsync_dir(path.parent)  # the rename itself
        folder, root = path.parent, self.root.resolve()
        while folder not in self._synced and folder.resolve() != root:  # the folders created on the way
            fsync_dir(folder.parent)
            self._synced.add(folder)
            folder = folder.parent
        return path


class Closed(Exception):
    """The buffer takes no more entries."""


class Buffer:
    """Entries waiting for their segment; a flusher thread (``start()``) writes them with ``writer``."""

    def __init__(self, writer: SegmentWriter, *, batch_events: int = 256, batch_bytes: int = 4 << 20,
                 flush_interval_s: float = 0.2) -> None:
        self.writer = writer
        self.batch_events, self.batch_bytes, self.flush_interval_s = batch_events, batch_bytes, flush_interval_s
        self._lock = threading.Lock()
        self._room, self._work = threading.Condition(self._lock), threading.Condition(self._lock)
        self._groups: dict[tuple[str, str, str], Segment] = {}
        self.events = self.bytes = 0  # buffered now
        self.peak_events = self.peak_bytes = self.segments_written = 0
        self._since = 0.0
        self._draining = self._closed = False
        self._thread = threading.Thread(target=self._run, name="segment-flusher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _full(self) -> bool:
        return self.events >= self.batch_events or self.bytes >= self.batch_bytes

    def add(self, namespace: str, entry: Entry) -> Segment:
        """Buffer ``entry``, waiting while the buffer is full; its segment says when it is durable."""
        with self._lock:
            while self._full() and not self._closed:
                self._room.wait()
            if self._closed:
                raise Closed("the buffer is closed")
            seg = self._groups.setdefault((namespace, entry.inference_service, entry.component), Segment(namespace))
            seg.entries.append(entry)
            if not self.events:
                self._since = time.monotonic()
            self.events, self.bytes = self.events + 1, self.bytes + len(entry.body)
            self.peak_events, self.peak_bytes = max(self.peak_events, self.events), max(self.peak_bytes, self.bytes)
            if self.events == 1 or self._full() or self.flush_interval_s == 0:
                self._work.notify()
            return seg

    def _take(self) -> list[Segment] | None:
        """The next batch once it is due; None once closed and empty."""
        with self._lock:
            while True:
                wait = None
                if self._groups:
                    wait = self._since + self.flush_interval_s - time.monotonic()
                    if self._full() or self._draining or self._closed or wait <= 0:
                        break
                elif self._closed:
                    return None
                self._work.wait(wait)
            batch = list(self._groups.values())
            self._groups, self.events, self.bytes = {}, 0, 0
            self._room.notify_all()
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            for seg in batch:
                try:
                    seg.path = self.writer.write(seg)
                    self.segments_written += 1
                except Exception as err:  # noqa: BLE001 (answered 503; the flusher must live on)
                    seg.error = f"{type(err).__name__}: {getattr(err, 'strerror', None) or err}"
                    log.error("could not write %d entries of %s under %s: %s", len(seg.entries),
                              "/".join(k for k in (seg.namespace, seg.entries[0].inference_service) if k) or "-",
                              self.writer.root, seg.error)
                finally:
                    seg.done.set()

    def drain(self) -> None:
        """From now on, write whatever is buffered at once."""
        with self._lock:
            self._draining = True
            self._work.notify()

    def close(self, timeout: float | None = None) -> None:
        """Refuse more entries, write what is buffered, and stop the flusher."""
        with self._lock:
            self._closed = True
            self._work.notify()
            self._room.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)


__all__ = ["Buffer", "Closed", "Segment", "SegmentWriter", "fsync_dir"]

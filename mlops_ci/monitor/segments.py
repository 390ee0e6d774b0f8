"""Payload-log entries buffered into segments, each written durably in KServe's storage layout.

The receiver's memory and durability half (:mod:`.receiver` is the HTTP half). :class:`Buffer`
holds entries per (namespace, inference service, component), at most ``batch_bytes`` bytes or
``batch_events`` entries plus one entry (``add`` refuses more until the flusher has taken them),
and a flusher thread writes everything it holds as one batch once the batch is due: when it is
full, ``flush_interval_s`` after its first entry, or as soon as every connected sender has an
entry in it, if it is no smaller than the batch before it. That last rule is group commit for
senders that wait for their acknowledgement before sending again (each of KServe's agent's
workers sends one event at a time, kserve/kserve ``pkg/logger/worker.go``): once all of them
wait on this batch, nobody can add to it, and waiting out the interval would only cap the rate
at senders / interval. The receiver says how many senders are connected (``connected``); with
none said, or for a first batch, or one smaller than the last (senders that reconnect for each
event may be on their way), the interval holds. Each group becomes one object
through :func:`mlops_ci.monitor.store.write_batch` (temporary name, fsync, rename, folder fsync);
:class:`SegmentWriter` then fsyncs the folders it created, and only then reports the segment
done (``on_done``): whoever waits on it may acknowledge.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlops_ci.monitor.logs import Entry
from mlops_ci.monitor.store import object_path, write_batch

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Segment:
    """One group's entries in a batch; once it is done its object is durable (``path``) or failed (``error``)."""

    namespace: str
    entries: list[Entry] = field(default_factory=list)
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
                           marshaller=self.marshaller)  # its folder fsynced: the rename itself is durable
        folder = path.parent
        if folder not in self._synced:  # the folders created on the way, once each
            root = self.root.resolve()
            while folder not in self._synced and folder.resolve() != root:
                fsync_dir(folder.parent)
                self._synced.add(folder)
                folder = folder.parent
        return path


class Closed(Exception):
    """The buffer takes no more entries."""


def _nothing(*_: object) -> None:
    return None


class Buffer:
    """Entries waiting for their segment; a flusher thread (``start()``) writes them with ``writer``.

    ``on_done(segment)`` is called (on the flusher thread) once a segment is durable or failed;
    ``on_room()`` once a full buffer has room again. Neither may block."""

    def __init__(self, writer: SegmentWriter, *, batch_events: int = 256, batch_bytes: int = 4 << 20,
                 flush_interval_s: float = 0.2, on_done: Callable[[Segment], None] = _nothing,
                 on_room: Callable[[], None] = _nothing) -> None:
        self.writer, self.on_done, self.on_room = writer, on_done, on_room
        self.batch_events, self.batch_bytes, self.flush_interval_s = batch_events, batch_bytes, flush_interval_s
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._groups: dict[tuple[str, str, str], Segment] = {}
        self.events = self.bytes = 0  # buffered now
        self.peak_events = self.peak_bytes = self.segments_written = 0
        self._since, self._last = 0.0, 0  # the first entry's time; the previous batch's entries
        self._senders = 0  # connected now, each with at most one entry waiting
        self._draining = self._closed = self._was_full = False
        self._thread = threading.Thread(target=self._run, name="segment-flusher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _full(self) -> bool:
        return self.events >= self.batch_events or self.bytes >= self.batch_bytes

    def _everyone_waits(self) -> bool:
        return 0 < self._senders <= self.events and 0 < self._last <= self.events

    def connected(self, senders: int) -> None:
        """How many senders are connected now (each waits for its answer before sending again)."""
        with self._lock:
            self._senders = senders
            if self._groups and self._everyone_waits():
                self._work.notify()

    def add(self, namespace: str, entry: Entry) -> Segment | None:
        """Buffer ``entry`` and return its segment (done once durable); None while the buffer is full."""
        with self._lock:
            if self._closed:
                raise Closed("the buffer is closed")
            if self._full():
                self._was_full = True
                return None
            key = (namespace, entry.inference_service, entry.component)
            if (seg := self._groups.get(key)) is None:
                seg = self._groups[key] = Segment(namespace)
            seg.entries.append(entry)
            if not self.events:
                self._since = time.monotonic()
            self.events, self.bytes = self.events + 1, self.bytes + len(entry.body)
            self.peak_events = max(self.peak_events, self.events)
            self.peak_bytes = max(self.peak_bytes, self.bytes)
            if self.events == 1 or self._full() or self.flush_interval_s == 0 or self._everyone_waits():
                self._work.notify()
            return seg

    def _take(self) -> tuple[list[Segment] | None, bool]:
        """The next batch once it is due (None once closed and empty), and whether adders wait for room."""
        with self._lock:
            while True:
                wait = None
                if self._groups:
                    wait = self._since + self.flush_interval_s - time.monotonic()
                    if wait <= 0 or self._full() or self._everyone_waits() or self._draining or self._closed:
                        break
                elif self._closed:
                    return None, False
                self._work.wait(wait)
            batch, self._last, was_full = list(self._groups.values()), self.events, self._was_full
            self._groups, self.events, self.bytes, self._was_full = {}, 0, 0, False
            return batch, was_full

    def _run(self) -> None:
        while True:
            batch, was_full = self._take()
            if batch is None:
                return
            if was_full:
                self.on_room()
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
                    self.on_done(seg)

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
        if self._thread.is_alive():
            self._thread.join(timeout)


__all__ = ["Buffer", "Closed", "Segment", "SegmentWriter", "fsync_dir"]

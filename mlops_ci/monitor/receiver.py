"""The receiver of KServe's payload logs sent as CloudEvents (a predictor's ``logger.url`` is http(s)).

``POST /`` takes one CloudEvent, binary or structured (:mod:`.cloudevent` checks it); entries go
through :mod:`.segments` into the layout KServe's storage mode writes, so
:func:`mlops_ci.monitor.logs.read_objects` reads one format whichever way KServe logs.

**An event is acknowledged (200) only after the segment holding it is durable** (temporary name,
fsync, rename, folder fsync). A sender that got 200 may forget the event; one that got anything
else, or no answer, must assume it was not stored. Many events share one segment, so one fsync
(group commit): a handler waits for its batch, which is written when full, ``flush_interval_s``
after its first event, or once every open connection has its event in it (see :mod:`.segments`). Refusals (400 a malformed event or request, 404, 411 no Content-Length, 413
over ``max_event_bytes``, 431 headers over ``HEAD_LIMIT``, 501 a method but GET and POST, 503
storage failing, not durable ``ack_timeout_s`` after the segment's first event, or shutting down)
are counted per reason and logged one line each, never with the body. ``GET /healthz`` returns the counters (503 while draining).
SIGTERM stops accepting, writes and acknowledges what it holds, then exits 0.

One thread serves every connection (an asyncio loop: HTTP/1.1 with keep-alive, one request at a
time per connection, ``Content-Length`` bodies only); the flusher thread encodes and fsyncs.
Memory is bounded: at most ``max_readers`` bodies are read and waiting for room in the buffer,
which holds at most ``batch_bytes`` plus one event; asyncio stops reading any other connection
once it holds ``2 * HEAD_LIMIT`` unread bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from mlops_ci.errors import FatalError, InputError, UsageError
from mlops_ci.monitor.cloudevent import K8S_NAME, Refused, parse_event
from mlops_ci.monitor.http1 import HEAD_LIMIT, IdleWatch, keep_alive, ok, parse_head, response
from mlops_ci.monitor.segments import Buffer, Closed, Segment, SegmentWriter
from mlops_ci.monitor.store import ENCODERS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceiverSettings:
    root: Path
    marshaller: str = "json"
    namespace_default: str = ""  # for events without ce-namespace
    store_path: str = ""  # KServe's storage.path: a sub-folder under <namespace>/<service>/<component>
    max_event_bytes: int = 1 << 20
    batch_events: int = 256
    batch_bytes: int = 4 << 20
    flush_interval_s: float = 0.2
    max_readers: int = 32  # bodies read and waiting for room in the buffer, at most
    ack_timeout_s: float = 60.0  # after a segment's first event: its senders get 503 if it is not durable by then

    def __post_init__(self) -> None:
        if self.marshaller not in ENCODERS:
            raise UsageError(f"marshaller {self.marshaller!r} is not one of {', '.join(sorted(ENCODERS))}")
        for name in ("max_event_bytes", "batch_events", "batch_bytes", "max_readers"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not 0 <= self.flush_interval_s <= 3600:
            raise UsageError(f"the flush interval must be within [0, 3600] seconds, not {self.flush_interval_s}")
        if self.namespace_default and not K8S_NAME.match(self.namespace_default):
            raise UsageError(f"namespace {self.namespace_default!r} is not a Kubernetes name")
        if self.store_path and any(p in ("", ".", "..") for p in self.store_path.split("/")):
            raise UsageError(f"store path {self.store_path!r} must be folder names, without '.', '..' or '//'")


class Receiver:
    """The receiver in this process: ``start()``, POST events to ``url``; ``stop()`` flushes and acknowledges."""

    def __init__(self, settings: ReceiverSettings, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings, self.accepted, self.refused, self.draining = settings, 0, Counter[str](), False
        writer = SegmentWriter(settings.root, marshaller=settings.marshaller, store_path=settings.store_path)
        self.buffer = Buffer(writer, batch_events=settings.batch_events, batch_bytes=settings.batch_bytes,
                             flush_interval_s=settings.flush_interval_s, on_done=self._segment_done,
                             on_room=self._room_again)
        self._readers, self._room, self._idle = asyncio.Semaphore(settings.max_readers), asyncio.Event(), asyncio.Event()
        self._waiting: dict[Segment, tuple[asyncio.Future[bool], asyncio.TimerHandle]] = {}
        self._in_flight, self._connections = 0, dict[asyncio.StreamWriter, asyncio.Task | None]()
        self._server: asyncio.Server | None = None
        try:
            settings.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"cannot create the log folder {settings.root}: {err.strerror or err}") from err
        try:
            self._sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                              backlog=1024)
        except OSError as err:
            raise UsageError(f"cannot listen on {host}:{port}: {err.strerror or err}",
                             hint="choose another --host or --port") from err
        self._address, self._loop = self._sock.getsockname()[:2], asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="receiver-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> Self:
        self.buffer.start()
        self._thread.start()
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._connection, sock=self._sock,
                                                                          limit=HEAD_LIMIT))
        self._loop.run_forever()

    def health(self) -> dict[str, Any]:
        b = self.buffer
        return {"status": "draining" if self.draining else "ok", "accepted": self.accepted,
                "refused": dict(sorted(self.refused.items())), "segments_written": b.segments_written,
                "buffered_events": b.events, "buffered_bytes": b.bytes, "peak_buffered_events": b.peak_events,
                "peak_buffered_bytes": b.peak_bytes}

    # --- the flusher's side (its thread): wake the loop

    def _segment_done(self, seg: Segment) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._resolve, seg, True)

    def _room_again(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._room.set)

    # --- the loop's side

    def _resolve(self, seg: Segment, durable: bool) -> None:
        """Wake the handlers waiting for ``seg``: it is done (True), or its acknowledgement timed out (False)."""
        if (waiting := self._waiting.pop(seg, None)) is not None:
            waiting[1].cancel()
            waiting[0].set_result(durable)

    async def _add(self, namespace: str, entry: Any) -> tuple[Segment, asyncio.Future[bool]]:
        """Buffer ``entry`` (waiting for room while the buffer is full); its segment and the future of its write."""
        try:
            while (seg := self.buffer.add(namespace, entry)) is None:
                self._room.clear()  # the flusher sets it, on this loop, once it has taken the batch
                await self._room.wait()
        except Closed:
            raise Refused(503, "shutting-down", "the receiver is shutting down") from None
        if (waiting := self._waiting.get(seg)) is None:
            fut = self._loop.create_future()
            waiting = self._waiting[seg] = fut, self._loop.call_later(self.settings.ack_timeout_s, self._resolve,
                                                                      seg, False)
        return seg, waiting[0]

    def _refuse(self, writer: asyncio.StreamWriter, r: Refused, peer: str, *, close: bool) -> bool:
        self.refused[r.reason] += 1
        log.warning("refused %d %s from %s: %s", r.status, r.reason, peer, r.detail)
        close = close or r.status != 400  # the body may be unread
        writer.write(response(r.status, {"error": r.reason, "message": r.detail}, close=close))
        return close

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str((writer.get_extra_info("peername") or ("-",))[0])
        self._connections[writer] = asyncio.current_task()
        self.buffer.connected(len(self._connections))
        watch = IdleWatch(self._loop, writer.transport)
        try:
            while not await self._one(reader, writer, peer, watch):
                if writer.transport.get_write_buffer_size() > HEAD_LIMIT:  # a sender that does not read
                    await writer.drain()
                watch.since = self._loop.time()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the sender went away, or sat idle: nobody to answer
        except Exception as err:  # noqa: BLE001 (one connection's bug must not stop the others)
            log.warning("connection from %s failed: %r", peer, err)
        finally:
            watch.cancel()
            del self._connections[writer]
            self.buffer.connected(len(self._connections))
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str,
                   watch: IdleWatch) -> bool:
        """Read and answer one request; True when the connection is to be closed."""
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).lstrip(b"\r\n")
            watch.since = None
        except asyncio.LimitOverrunError:
            return self._refuse(writer, Refused(431, "bad-request", f"headers over {HEAD_LIMIT} bytes"), peer,
                                close=True)
        try:
            method, target, version, headers = parse_head(head)
        except ValueError as err:
            return self._refuse(writer, Refused(400, "bad-request", f"malformed request: {err}"), peer, close=True)
        close = not keep_alive(version, headers)
        path = target.split("?", 1)[0]
        if method == "GET":
            if path != "/healthz":
                return self._refuse(writer, Refused(404, "not-found", f"no {target[:80]!r}: POST / or GET /healthz"),
                                    peer, close=close)
            close = close or headers.get("content-length", "0") != "0"  # a body this does not read
            writer.write(response(503 if self.draining else 200, self.health(), close=close))
            return close
        if method != "POST":
            return self._refuse(writer, Refused(501, "not-implemented", f"method {method[:20]!r}: POST or GET"),
                                peer, close=close)
        self._in_flight += 1
        try:
            if self.draining:
                raise Refused(503, "shutting-down", "the receiver is shutting down")
            if path != "/":
                raise Refused(404, "not-found", f"no {target[:80]!r}: POST events to /")
            n = self._length(headers)
            if headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            async with self._readers:  # a body in hand, waiting for room in the buffer
                watch.since = self._loop.time()
                try:
                    body = await reader.readexactly(n)
                    watch.since = None
                except (asyncio.IncompleteReadError, ConnectionError) as err:
                    self.refused["incomplete"] += 1
                    log.warning("refused - incomplete from %s: %s", peer, type(err).__name__)
                    return True
                namespace, entry = parse_event(headers, body, namespace_default=self.settings.namespace_default)
                seg, written = await self._add(namespace, entry)
            if not await asyncio.shield(written):
                raise Refused(503, "storage", f"the segment was not written within {self.settings.ack_timeout_s} s")
            if seg.error is not None:
                raise Refused(503, "storage", f"the segment could not be written ({seg.error})")
        except Refused as r:
            return self._refuse(writer, r, peer, close=close)
        finally:
            self._in_flight -= 1
            if self.draining and not self._in_flight:
                self._idle.set()
        self.accepted += 1
        writer.write(response(200, close=True) if close else ok())
        return close

    def _length(self, headers: dict[str, str]) -> int:
        length, cap = headers.get("content-length", ""), self.settings.max_event_bytes
        if not (length.isascii() and length.strip().isdecimal()) or "transfer-encoding" in headers:
            raise Refused(411, "length-required", f"Content-Length {length[:20]!r} is not a number of bytes "
                          "(chunked bodies are not accepted)")
        if (n := int(length)) > cap:
            raise Refused(413, "too-large", f"{n} bytes, over the {cap}-byte limit for one event")
        return n

    async def _drain(self, deadline: float) -> None:
        """Stop listening, let the flusher write everything, answer what is in flight, close the connections."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        self.buffer.drain()
        while self._in_flight and (left := deadline - time.monotonic()) > 0:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), left)
        for writer in self._connections:
            writer.close()  # their handlers see the end of their stream, and return
        if handlers := [t for t in self._connections.values() if t]:
            await asyncio.wait(handlers, timeout=max(0.1, deadline - time.monotonic()))

    def stop(self, timeout: float = 25.0) -> None:
        """Stop accepting; write and acknowledge what is buffered or being received; close."""
        deadline = time.monotonic() + timeout
        if self._thread.is_alive():
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                asyncio.run_coroutine_threadsafe(self._drain(deadline), self._loop).result(
                    max(0.0, deadline - time.monotonic()) + 1)
        self.draining = True
        self._sock.close()
        self.buffer.close(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(max(0.0, deadline - time.monotonic()) + 1)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(root: Path, *, host: str = "127.0.0.1", port: int = 0, marshaller: str = "json",
          namespace_default: str = "", store_path: str = "", max_event_bytes: int = 1 << 20,
          batch_events: int = 256, batch_bytes: int = 4 << 20, flush_interval_s: float = 0.2) -> int:
    """Run the receiver until SIGTERM or SIGINT, printing ``listening on <url>`` first; 0 once flushed."""
    settings = ReceiverSettings(root=Path(root), marshaller=marshaller, namespace_default=namespace_default,
                                store_path=store_path, max_event_bytes=max_event_bytes, batch_events=batch_events,
                                batch_bytes=batch_bytes, flush_interval_s=flush_interval_s)
    return run_forever(Receiver(settings, host=host, port=port))


def run_forever(receiver: Receiver) -> int:
    """Start ``receiver`` and block until SIGTERM/SIGINT; then flush, acknowledge and return 0."""
    signals: list[int] = []  # a handler that takes no lock cannot deadlock the thread it interrupts
    previous = {s: signal.signal(s, lambda n, _: signals.append(n)) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        receiver.start()
        print(f"listening on {receiver.url}", flush=True)
        log.info("receiving KServe payload logs on %s, writing them under %s", receiver.url, receiver.settings.root)
        while not signals:
            time.sleep(0.05)
        log.info("%s: writing what is buffered, then stopping", signal.Signals(signals[0]).name)
        receiver.stop()
        log.info("stopped: %s", json.dumps(receiver.health()))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlops_ci.monitor.receiver", description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, required=True, help="the folder to write the logs to")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="the port (default 8080; 0: a free one)")
    p.add_argument("--marshaller", choices=sorted(ENCODERS), default="json", help="segment format (default json)")
    p.add_argument("--namespace", default="", help="the namespace of events without ce-namespace")
    p.add_argument("--store-path", default="", help="KServe's storage.path: a sub-folder per component")
    p.add_argument("--max-event-bytes", type=int, default=1 << 20, help="larger events get 413 (default 1 MiB)")
    p.add_argument("--batch-events", type=int, default=256, help="events per segment at most (default 256)")
    p.add_argument("--batch-bytes", type=int, default=4 << 20, help="bytes buffered at most (default 4 MiB)")
    p.add_argument("--flush-interval", type=float, default=0.2, help="seconds an event waits at most (default 0.2)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    return serve(args.root, host=args.host, port=args.port, marshaller=args.marshaller,
                 namespace_default=args.namespace, store_path=args.store_path, max_event_bytes=args.max_event_bytes,
                 batch_events=args.batch_events, batch_bytes=args.batch_bytes, flush_interval_s=args.flush_interval)


__all__ = ["Receiver", "ReceiverSettings", "main", "run_forever", "serve"]

if __name__ == "__main__":
    try:
        sys.exit(main())
    except FatalError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)

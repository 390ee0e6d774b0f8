"""The receiver of KServe's payload logs sent as CloudEvents (a predictor's ``logger.url`` is http(s)).

KServe's agent POSTs each request and response it logs as one CloudEvent (kserve/kserve
``pkg/logger/worker.go``), in binary mode: ``ce-id``, ``ce-type``
``org.kubeflow.serving.inference.request|response``, ``ce-specversion: 1.0``, ``ce-time``, the
extensions ``ce-inferenceservicename``, ``ce-namespace``, ``ce-component``, ``ce-endpoint``
(percent-decoded), the payload as the body with its Content-Type. Structured mode
(``application/cloudevents+json``: attributes and ``data`` or ``data_base64`` in one JSON object,
all of it under the size cap) is accepted too. ``POST /`` takes one event.

Entries go through :mod:`.segments` into the layout KServe's storage mode writes, so
:func:`mlops_ci.monitor.logs.read_objects` reads one format whichever way KServe logs. Memory is
bounded: the buffer holds at most ``batch_bytes`` plus one event; ``max_readers`` bodies wait for it.

**An event is acknowledged (200) only after the segment holding it is durable** (temporary name,
fsync, rename, folder fsync). A sender that got 200 may forget the event; one that got anything
else, or no answer, must assume it was not stored. Refusals (400 malformed, 404, 411 no
Content-Length, 413 over ``max_event_bytes``, 503 storage failing or shutting down) are counted
per reason and logged one line each, never with the body. ``GET /healthz`` returns the counters
(503 while draining). SIGTERM stops accepting, writes and acknowledges what it holds, then exits 0.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import logging
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote

from mlops_ci.errors import FatalError, InputError, UsageError
from mlops_ci.monitor.logs import KINDS, Entry
from mlops_ci.monitor.segments import Buffer, Closed, Segment, SegmentWriter
from mlops_ci.monitor.store import ENCODERS

log = logging.getLogger(__name__)
STRUCTURED = "application/cloudevents+json"
K8S_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # DNS-1123


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
    ack_timeout_s: float = 60.0  # a sender whose segment is not durable by then gets 503

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


class Refused(Exception):
    """Why an event is not stored: the HTTP status, a counter key and a message (never the body)."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


def _id_ok(value: str) -> bool:  # it names the object's file
    return (len(value) <= 200 and value.isascii() and value.isprintable() and not value.startswith(".")
            and "/" not in value and "\\" not in value)


def _text(attrs: Mapping[str, Any], name: str) -> str:
    value = attrs.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Refused(400, "bad-attribute", f"attribute {name} is a {type(value).__name__}, not a string")
    return value


def _time(value: str, now: datetime) -> datetime:
    if not value:
        return now
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Refused(400, "bad-attribute", f"time {value[:40]!r} is not RFC 3339") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _structured(body: bytes) -> tuple[dict[str, Any], bytes, str]:
    """The attributes, the data as bytes and its content type of a structured-mode event."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise Refused(400, "bad-json", f"structured event is not JSON ({type(err).__name__})") from None
    if not isinstance(doc, dict):
        raise Refused(400, "bad-json", f"structured event is a JSON {type(doc).__name__}, not an object")
    content_type = _text(doc, "datacontenttype") or "application/json"
    if "data" in doc and "data_base64" in doc:
        raise Refused(400, "bad-data", "structured event has both data and data_base64")
    if "data_base64" in doc:
        try:
            data = base64.b64decode(_text(doc, "data_base64"), validate=True)
        except (binascii.Error, ValueError):
            raise Refused(400, "bad-base64", "data_base64 is not base64") from None
    else:  # text (or JSON text sent as a JSON string) as its UTF-8; another JSON value re-serialised
        value = doc.get("data")
        text = value if value is None or isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        data = (text or "").encode()
    attrs = {k: v for k, v in doc.items() if k not in ("data", "data_base64")}
    return attrs, data, content_type


def parse_event(headers: Mapping[str, str], body: bytes, *, namespace_default: str = "",
                now: datetime | None = None) -> tuple[str, Entry]:
    """The namespace and :class:`Entry` of one CloudEvent as KServe posts it (binary or structured)."""
    content_type = headers.get("Content-Type") or ""
    media = content_type.split(";")[0].strip().lower()
    if media == "application/cloudevents-batch+json":
        raise Refused(400, "unsupported", "batched CloudEvents are not accepted: send one event per request")
    if media == STRUCTURED:
        attrs, data, content_type = _structured(body)
    else:
        attrs = {k[3:].lower(): unquote(v) for k, v in headers.items() if k.lower().startswith("ce-")}
        data = body
    for name in ("id", "type", "specversion"):
        if not _text(attrs, name):
            raise Refused(400, "missing-attribute", f"no {name} attribute (ce-{name})")
    if attrs["specversion"] != "1.0":
        raise Refused(400, "bad-specversion", f"specversion {attrs['specversion'][:20]!r} is not 1.0")
    kind = KINDS.get(attrs["type"])
    if kind is None:
        raise Refused(400, "unknown-type", f"type {attrs['type'][:80]!r} is not {' or '.join(KINDS)}")
    if not _id_ok(attrs["id"]):
        raise Refused(400, "bad-id", f"id {attrs['id'][:80]!r} cannot name a file (printable ASCII, no '/')")
    namespace = _text(attrs, "namespace") or namespace_default
    service, component = _text(attrs, "inferenceservicename"), _text(attrs, "component")
    for name, value in (("namespace", namespace), ("inferenceservicename", service), ("component", component)):
        if value and not K8S_NAME.match(value):
            raise Refused(400, "bad-name", f"{name} {value[:80]!r} is not a Kubernetes name")
    entry = Entry(id=attrs["id"], kind=kind, body=data, time=_time(_text(attrs, "time"), now or datetime.now(UTC)),
                  inference_service=service, component=component, endpoint=_text(attrs, "endpoint"),
                  content_type=content_type)
    return namespace, entry


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as KServe's Go client expects
    server_version = "mlops-ci-receiver"
    timeout = 60  # seconds a connection may sit idle or trickle a body
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # access lines: debug only
        log.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, doc: dict | None = None) -> None:
        data = json.dumps(doc).encode() if doc is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, r: Refused) -> None:
        self.server.receiver.count(r.reason)
        log.warning("refused %d %s from %s: %s", r.status, r.reason, self.client_address[0], r.detail)
        self.close_connection |= r.status != 400  # the body may be unread
        self._reply(r.status, {"error": r.reason, "message": r.detail})

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/healthz":
            return self._refuse(Refused(404, "not-found", f"no {self.path[:80]!r}: POST / or GET /healthz"))
        receiver = self.server.receiver
        return self._reply(503 if receiver.draining else 200, receiver.health())

    def _body(self) -> bytes:
        length, cap = self.headers.get("Content-Length", ""), self.server.receiver.settings.max_event_bytes
        if not (length.isascii() and length.strip().isdecimal()) or "Transfer-Encoding" in self.headers:
            raise Refused(411, "length-required", f"Content-Length {length[:20]!r} is not a number of bytes "
                          "(chunked bodies are not accepted)")
        if (n := int(length)) > cap:
            raise Refused(413, "too-large", f"{n} bytes, over the {cap}-byte limit for one event")
        if len(body := self.rfile.read(n)) != n:
            raise ConnectionError(f"the body ended after {len(body)} of {n} bytes")
        return body

    def do_POST(self) -> None:
        receiver = self.server.receiver
        with receiver.request() as admitted:  # answered before a shutdown ends
            try:
                if not admitted:
                    raise Refused(503, "shutting-down", "the receiver is shutting down")
                if self.path.split("?")[0] != "/":
                    raise Refused(404, "not-found", f"no {self.path[:80]!r}: POST events to /")
                with receiver.readers:  # a body in hand, waiting for room in the buffer
                    namespace, entry = parse_event(self.headers, self._body(),
                                                   namespace_default=receiver.settings.namespace_default)
                    seg = receiver.add(namespace, entry)
                receiver.wait_durable(seg)
            except Refused as r:
                return self._refuse(r)
            except OSError as err:  # the sender went away mid-body: nobody to answer
                self.close_connection = True
                receiver.count("incomplete")
                log.warning("refused - incomplete from %s: %s", self.client_address[0], err)
                return None
            receiver.count()
            return self._reply(200)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an idle keep-alive connection must not hold up a shutdown
    block_on_close = False

    def __init__(self, address: tuple[str, int], receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        log.warning("connection from %s failed: %r", client_address[0], sys.exc_info()[1])


class Receiver:
    """The receiver in this process: ``start()``, POST events to ``url``; ``stop()`` flushes and acknowledges."""

    def __init__(self, settings: ReceiverSettings, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings, self.accepted, self.refused = settings, 0, Counter[str]()
        writer = SegmentWriter(settings.root, marshaller=settings.marshaller, store_path=settings.store_path)
        self.buffer = Buffer(writer, batch_events=settings.batch_events, batch_bytes=settings.batch_bytes,
                             flush_interval_s=settings.flush_interval_s)
        self.readers = threading.BoundedSemaphore(settings.max_readers)
        self.draining, self._in_flight, self._lock = False, 0, threading.Condition()
        try:
            settings.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"cannot create the log folder {settings.root}: {err.strerror or err}") from err
        try:
            self._server = _Server((host, port), self)
        except OSError as err:
            raise UsageError(f"cannot listen on {host}:{port}: {err.strerror or err}",
                             hint="choose another --host or --port") from err
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="receiver-http",
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> Self:
        self.buffer.start()
        self._thread.start()
        return self

    def count(self, refused: str = "") -> None:
        """One more event acknowledged, or refused for the reason given."""
        with self._lock:
            if refused:
                self.refused[refused] += 1
            else:
                self.accepted += 1

    def health(self) -> dict[str, Any]:
        b = self.buffer
        with self._lock:
            return {"status": "draining" if self.draining else "ok", "accepted": self.accepted,
                    "refused": dict(sorted(self.refused.items())), "segments_written": b.segments_written,
                    "buffered_events": b.events, "buffered_bytes": b.bytes, "peak_buffered_events": b.peak_events,
                    "peak_buffered_bytes": b.peak_bytes}

    @contextlib.contextmanager
    def request(self) -> Iterator[bool]:
        """One POST in flight (True), or refused because the receiver is draining (False)."""
        with self._lock:
            admitted = not self.draining
            self._in_flight += admitted
        try:
            yield admitted
        finally:
            with self._lock:
                self._in_flight -= admitted
                self._lock.notify_all()

    def add(self, namespace: str, entry: Entry) -> Segment:
        try:
            return self.buffer.add(namespace, entry)
        except Closed:
            raise Refused(503, "shutting-down", "the receiver is shutting down") from None

    def wait_durable(self, seg: Segment) -> None:
        if not seg.done.wait(self.settings.ack_timeout_s):
            raise Refused(503, "storage", f"the segment was not written within {self.settings.ack_timeout_s} s")
        if seg.error is not None:
            raise Refused(503, "storage", f"the segment could not be written ({seg.error})")

    def stop(self, timeout: float = 25.0) -> None:
        """Stop accepting; write and acknowledge what is buffered or being received; close."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self.draining = True
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self.buffer.drain()
        with self._lock:
            self._lock.wait_for(lambda: self._in_flight == 0, max(0.0, deadline - time.monotonic()))
        self.buffer.close(max(0.0, deadline - time.monotonic()))

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


__all__ = ["Receiver", "ReceiverSettings", "Refused", "main", "parse_event", "run_forever", "serve"]

if __name__ == "__main__":
    try:
        sys.exit(main())
    except FatalError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)

"""The little of HTTP/1.1 the receiver speaks, for an asyncio server: request heads in, responses out.

Requests are read by :mod:`.receiver` one at a time per keep-alive connection (no pipelining
needed, though it works), each with a ``Content-Length`` body; this module parses a head into
its method, target, version and headers (names in lower case), refusing what a proxy could
read differently (a folded line, a repeated ``Content-Length``), builds responses (JSON bodies,
``Date`` and ``Server`` set; the bodiless 200 built once a second), and watches a connection for
a sender that sits idle, with one timer per connection rather than one per read.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from email.utils import formatdate
from http import HTTPStatus

HEAD_LIMIT = 64 << 10  # bytes of request line and headers
IDLE_S = 60.0  # seconds a connection may sit idle, or take to send a request's head or its body
SERVER = "mlops-ci-receiver"


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """The method, target, version and headers (names in lower case) of a request's head (up to and
    including its blank line); ValueError, quoting the offending line, if it is malformed."""
    request_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    method, target, version = request_line.split(" ")
    if not version.startswith("HTTP/1.") or not method.isalpha():
        raise ValueError(request_line[:80])
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        name = name.lower()
        if not sep or not name or name != name.strip() or (name == "content-length" and name in headers):
            raise ValueError(line[:80])  # also a folded line, or a repeated length (request smuggling)
        headers[name] = value.strip()
    return method, target, version, headers


def keep_alive(version: str, headers: dict[str, str]) -> bool:
    connection = headers.get("connection", "").lower()
    return "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection


def response(status: int, doc: dict | None = None, *, close: bool = False, now: float | None = None) -> bytes:
    """A whole response: ``doc`` as its JSON body (none if None); ``Connection: close`` if ``close``."""
    data = json.dumps(doc).encode() if doc is not None else b""
    return (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nServer: {SERVER}\r\n"
            f"Date: {formatdate(time.time() if now is None else now, usegmt=True)}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode() + data


@functools.lru_cache(maxsize=2)
def _ok(second: int) -> bytes:
    return response(200, now=second)


def ok() -> bytes:
    """The bodiless 200 of an acknowledged event, keeping the connection open."""
    return _ok(int(time.time()))


class IdleWatch:
    """Closes a connection once it has waited ``IDLE_S`` for the sender: ``since`` is when the wait began,
    None while it is the receiver's turn (an event waiting for its segment is not an idle sender)."""

    __slots__ = ("_handle", "_loop", "_transport", "since")

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport) -> None:
        self._loop, self._transport, self.since = loop, transport, loop.time()
        self._handle = loop.call_later(IDLE_S, self._check)

    def _check(self) -> None:
        since, now = self.since, self._loop.time()
        if since is not None and now - since >= IDLE_S:
            self._transport.close()  # the read waiting on it ends, and its handler returns
        else:
            self._handle = self._loop.call_at((now if since is None else since) + IDLE_S, self._check)

    def cancel(self) -> None:
        self._handle.cancel()


__all__ = ["HEAD_LIMIT", "IDLE_S", "IdleWatch", "keep_alive", "ok", "parse_head", "response"]

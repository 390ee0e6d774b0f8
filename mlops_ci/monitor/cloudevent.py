"""One CloudEvent as KServe's agent posts it, checked and turned into a payload-log :class:`Entry`.

KServe's agent POSTs each request and response it logs as one CloudEvent (kserve/kserve
``pkg/logger/worker.go``), in binary mode: ``ce-id``, ``ce-type``
``org.kubeflow.serving.inference.request|response``, ``ce-specversion: 1.0``, ``ce-time``, the
extensions ``ce-inferenceservicename``, ``ce-namespace``, ``ce-component``, ``ce-endpoint``
(percent-decoded), the payload as the body with its Content-Type. Structured mode
(``application/cloudevents+json``: attributes and ``data`` or ``data_base64`` in one JSON object)
is accepted too. What cannot be stored is a :class:`Refused` (an HTTP status, a counter key and a
message that never quotes the body); :mod:`.receiver` answers it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from mlops_ci.monitor.logs import KINDS, Entry

STRUCTURED = "application/cloudevents+json"
K8S_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # DNS-1123


class Refused(Exception):
    """Why an event is not stored: the HTTP status, a counter key and a message (never the body)."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


@functools.lru_cache(maxsize=1024)  # the same few names on every event
def _k8s_name(value: str) -> bool:
    return K8S_NAME.match(value) is not None


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


def _time(value: str, now: datetime | None) -> datetime:
    if not value:
        return now or datetime.now(UTC)
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
    """The namespace and :class:`Entry` of one CloudEvent as KServe posts it (binary or structured).

    ``headers`` are the request's, their names in lower case (the body is never copied or decoded
    in binary mode)."""
    content_type = headers.get("content-type") or ""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/cloudevents-batch+json":
        raise Refused(400, "unsupported", "batched CloudEvents are not accepted: send one event per request")
    if media == STRUCTURED:
        attrs, data, content_type = _structured(body)
    else:
        attrs = {k[3:]: unquote(v) for k, v in headers.items() if k.startswith("ce-")}
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
        if value and not _k8s_name(value):
            raise Refused(400, "bad-name", f"{name} {value[:80]!r} is not a Kubernetes name")
    entry = Entry(id=attrs["id"], kind=kind, body=data, time=_time(_text(attrs, "time"), now),
                  inference_service=service, component=component, endpoint=_text(attrs, "endpoint"),
                  content_type=content_type)
    return namespace, entry


__all__ = ["K8S_NAME", "STRUCTURED", "Refused", "parse_event"]

"""KServe's payload logs as its logger writes them to storage, read back.

KServe's agent batches each request and response of a predictor with ``logger`` configured for
storage (``mlops_ci.config.payload_logging``) and writes one object per batch (kserve/kserve
``pkg/logger/store.go``)::

    <url path>/<namespace>/<inferenceservice>/<component>/<storage.path>/<id>-<request|response>.<ext>

named after the batch's first record. ``<ext>`` is the marshaller's: ``json`` holds the
``LogRequest`` objects (``pkg/logger/types.go``: ``id``, ``reqType``
``org.kubeflow.serving.inference.request|response``, ``bytes`` as base64, ``contentType``,
``inferenceService``, ``namespace``, ``component``, ``endpoint``, ``metadata``,
``occurrenceTime``, ...), one object alone or an array; ``parquet`` holds the same fields as
strings per row (``pkg/logger/marshaller_record.go``; no ``occurrenceTime``: the object's time
is used). Objects are read through fsspec (a local folder in the embedded default); one that
cannot be read or decoded is skipped with a :class:`Corrupt` finding, never a crash.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"
KINDS = {REQUEST: "request", RESPONSE: "response"}
OBJECT_NAME = re.compile(r"^(?P<id>.+)-(?P<kind>request|response)\.(?P<ext>json|parquet)$")
T = TypeVar("T")
MAX_OBJECT_BYTES = 256 << 20  # an object larger than this is not read into memory


@dataclass(frozen=True)
class Entry:
    """One logged request or response."""

    id: str
    kind: str  # "request" or "response"
    body: bytes
    time: datetime
    inference_service: str = ""
    component: str = ""
    endpoint: str = ""
    content_type: str = ""


@dataclass(frozen=True)
class Corrupt:
    """An object that was skipped, and why."""

    path: str
    reason: str


def _time(value, fallback: datetime) -> datetime:
    if isinstance(value, str) and value and not value.startswith("0001-01-01"):
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            pass
    return fallback


def _entry(item: dict, fallback: datetime) -> Entry:
    kind = KINDS.get(item.get("reqType", ""))
    if kind is None:
        raise ValueError(f"reqType {str(item.get('reqType'))[:80]!r} is not an inference request or response")
    ident = item.get("id")
    if not isinstance(ident, str) or not ident:
        raise ValueError("a record without an id")
    raw = item.get("bytes") or ""
    try:
        body = base64.b64decode(raw, validate=True) if raw else b""
    except (binascii.Error, ValueError, TypeError) as err:
        raise ValueError(f"record {ident[:80]}: bytes are not base64 ({err})") from err
    return Entry(id=ident, kind=kind, body=body, time=_time(item.get("occurrenceTime"), fallback),
                 inference_service=str(item.get("inferenceService") or ""),
                 component=str(item.get("component") or ""), endpoint=str(item.get("endpoint") or ""),
                 content_type=str(item.get("contentType") or ""))


def parse_json(data: bytes, fallback: datetime) -> list[Entry]:
    """The entries of a JSON-marshalled object (one LogRequest, or an array of them)."""
    doc = json.loads(data)
    items = doc if isinstance(doc, list) else [doc]
    if not all(isinstance(i, dict) for i in items):
        raise ValueError("not LogRequest objects")
    return [_entry(i, fallback) for i in items]


def parse_parquet(data: bytes, fallback: datetime) -> list[Entry]:
    """The entries of a Parquet-marshalled object (marshaller_record.go's columns)."""
    import io

    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    missing = {"id", "reqType", "bytes"} - set(table.column_names)
    if missing:
        raise ValueError(f"no {', '.join(sorted(missing))} column")
    return [_entry(row, fallback) for row in table.to_pylist()]


PARSERS = {"json": parse_json, "parquet": parse_parquet}


def list_objects(url: str, *, since: datetime | None = None, until: datetime | None = None) -> list[str]:
    """The log objects under ``url`` named as KServe names them (modified in [since, until) when
    given), sorted; each a path or URL that :func:`read_object` opens on its own. A folder that
    does not exist holds none."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    out = []
    for path, info in sorted(fs.find(root, detail=True).items()):
        if OBJECT_NAME.match(path.rsplit("/", 1)[-1]) is None:
            continue
        modified = _modified(info)
        if (since and modified < since) or (until and modified >= until):
            continue
        out.append(fs.unstrip_protocol(path) if "://" in url else path)
    return out


def read_object(path: str, parse: Callable[[bytes, str, datetime], T]) -> T | Corrupt:
    """``parse(data, ext, modified)`` of one object, or why it was skipped (too large, unreadable,
    not KServe's): a corrupt or foreign object is said, never a crash."""
    import fsspec

    try:
        fs, inner = fsspec.core.url_to_fs(path)
        info = fs.info(inner)
        if (info.get("size") or 0) > MAX_OBJECT_BYTES:
            return Corrupt(path, f"{info['size']} bytes, over the {MAX_OBJECT_BYTES}-byte limit for one object")
        with fs.open(inner, "rb") as fh:
            data = fh.read()
        return parse(data, OBJECT_NAME.match(path.rsplit("/", 1)[-1])["ext"], _modified(info))
    except Exception as err:  # noqa: BLE001  (a corrupt or foreign object: skipped, said)
        return Corrupt(path, f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")


def read_objects(url: str, *, since: datetime | None = None, until: datetime | None = None
                 ) -> Iterator[tuple[str, list[Entry] | Corrupt]]:
    """Each log object under ``url`` (a folder, or any fsspec URL) with its entries or why it was
    skipped; only objects modified in [since, until) when given (the entries' own times are
    filtered by the caller)."""
    for path in list_objects(url, since=since, until=until):
        yield path, read_object(path, lambda data, ext, modified: PARSERS[ext](data, modified))


def _modified(info: dict) -> datetime:
    value = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created")
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)


__all__ = [
    "OBJECT_NAME",
    "PARSERS",
    "REQUEST",
    "RESPONSE",
    "Corrupt",
    "Entry",
    "list_objects",
    "parse_json",
    "parse_parquet",
    "read_object",
    "read_objects",
]

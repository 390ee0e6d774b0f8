"""One log object's records read at once: the checks :mod:`.logs` makes of each record, the times as
it reads them, and every ``bytes`` field base64-decoded in one call (:func:`b64_bulk`) rather than
one by one. The stream path (:mod:`.stream`) reads objects with :func:`read_records`.

Each record's ``endpoint`` (which predictor answered: a rollout's ``canary`` or the primary's
``default``) is kept only when one of the object's records names one: traffic logged without
endpoints, the common case, costs one pass over a column that holds nothing."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


@dataclass
class Records:
    """One object's records: ids, which are requests, bodies (Arrow binary) and times (POSIX µs); their
    endpoints (Arrow strings, "" where a record names none), or None when none of them does."""

    ids: list[str]
    is_request: np.ndarray
    bodies: pa.Array
    times: np.ndarray
    endpoints: pa.Array | None = None


def _b64(raw, ident: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=True) if raw else b""
    except (binascii.Error, ValueError, TypeError) as err:
        raise ValueError(f"record {ident[:80]}: bytes are not base64 ({err})") from err


def _a2b(data) -> bytes:
    """Strict base64 decoding: pybase64's SIMD decoder where installed, else binascii's."""
    try:
        import pybase64
    except ImportError:
        return binascii.a2b_base64(data, strict_mode=True)
    return pybase64.b64decode(data, validate=True)


def b64_bulk(encoded: pa.Array) -> pa.Array | None:
    """All of an object's base64 texts decoded in one call (Arrow binary), or None when one of them
    is not what ``base64.b64decode(validate=True)`` accepts (then each is decoded alone, which names it).

    Every text is a whole number of 4-character groups, so their concatenation decodes group by group
    to the concatenation of their bytes once each text's trailing ``=`` is read as ``A`` (zero bits);
    the bytes those padding characters stand for are then dropped. Strict decoding refuses anything
    outside the alphabet and any ``=`` left (one that was not trailing)."""
    import numpy as np
    import pyarrow as pa

    if encoded.null_count:
        encoded = encoded.fill_null("")
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    wide = pa.types.is_large_string(encoded.type) or pa.types.is_large_binary(encoded.type)
    encoded = encoded.cast(pa.large_binary() if wide else pa.binary())
    n = len(encoded)
    _, offsets_buf, data_buf = encoded.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64 if wide else np.int32)[encoded.offset:encoded.offset + n + 1]
    offsets = offsets.astype(np.int64)
    lengths = np.diff(offsets)
    if n == 0 or (lengths % 4).any():
        return None if n else pa.array([], type=pa.binary())
    chars = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0]:offsets[-1]].copy()
    ends = (offsets[1:] - offsets[0])[lengths > 0]
    last, second = chars[ends - 1] == ord("="), chars[ends - 2] == ord("=")
    pads = np.zeros(n, dtype=np.int64)
    pads[lengths > 0] = last.astype(np.int64) + (second & last)
    chars[ends[last] - 1] = ord("A")
    chars[ends[second & last] - 2] = ord("A")
    try:
        out = _a2b(memoryview(chars))
    except (binascii.Error, ValueError):
        return None
    starts = (offsets - offsets[0]) // 4 * 3
    if len(out) != starts[-1]:
        return None
    big = starts[-1] >= 2**31
    kind = pa.large_binary() if big else pa.binary()
    if not pads.any():
        return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(starts.astype(np.int64 if big else np.int32)),
                                               pa.py_buffer(out)])
    # each text's bytes, then the bytes its padding stood for; Arrow's take copies the former together
    cuts = np.empty(2 * n + 1, dtype=np.int64)
    cuts[0::2], cuts[1::2] = starts, starts[1:] - pads
    halves = pa.Array.from_buffers(kind, 2 * n, [None, pa.py_buffer(cuts.astype(np.int64 if big else np.int32)),
                                                 pa.py_buffer(out)])
    return halves.take(pa.array(np.arange(0, 2 * n, 2)))


def _check(ids, kinds) -> np.ndarray:
    """Which records are requests; ValueError for an unknown reqType or a record without an id
    (``ids`` and ``kinds``: lists, or Arrow arrays as the Parquet marshaller's columns are read)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from mlops_ci.monitor.logs import KINDS, REQUEST

    try:
        kinds = kinds if isinstance(kinds, pa.ChunkedArray | pa.Array) else pa.array(kinds, type=pa.string())
        ids = ids if isinstance(ids, pa.ChunkedArray | pa.Array) else pa.array(ids, type=pa.string())
    except (pa.ArrowException, TypeError):  # something other than text: named below
        kinds = [k if isinstance(k, str) else repr(k) for k in kinds]
        ids = [i if isinstance(i, str) else None for i in ids]
        kinds, ids = pa.array(kinds, type=pa.string()), pa.array(ids, type=pa.string())
    for kind in sorted(set(pc.unique(kinds).to_pylist()) - set(KINDS), key=str):
        raise ValueError(f"reqType {str(kind)[:80]!r} is not an inference request or response")
    if len(ids) and (ids.null_count or pc.min(pc.binary_length(ids)).as_py() == 0):
        raise ValueError("a record without an id")
    return pc.equal(kinds, REQUEST).to_numpy(zero_copy_only=False).astype(bool)


def _micros(values: list, fallback: datetime) -> np.ndarray:
    """Each record's time as logs._time reads it, in POSIX microseconds (vectorised for Go's UTC ``Z``)."""
    import numpy as np
    import pandas as pd

    from mlops_ci.monitor.logs import _time

    out = np.full(len(values), int(fallback.timestamp() * 1_000_000), dtype=np.int64)
    fast = [i for i, v in enumerate(values) if isinstance(v, str) and v.endswith("Z") and not v.startswith("0001-01-01")]
    if fast:
        parsed = pd.to_datetime(pd.Series([values[i] for i in fast]), utc=True, format="ISO8601", errors="coerce")
        ok = parsed.notna().to_numpy()
        micros = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64) // 1000  # fromisoformat keeps µs
        out[np.asarray(fast)[ok]] = micros[ok]
    for i, v in enumerate(values):
        if isinstance(v, str) and v and not v.endswith("Z"):
            out[i] = int(_time(v, fallback).timestamp() * 1_000_000)
    return out


def _endpoints(values) -> pa.Array | None:
    """The records' endpoints as text ("" for none; a list, or the Parquet marshaller's column), or
    None when none names one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, list):
        return pa.array([str(v) if v else "" for v in values], type=pa.string()) if any(values) else None
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not len(values) or values.null_count == len(values) or not pc.max(pc.binary_length(values)).as_py():
        return None
    return values.cast(pa.string()).fill_null("")


def _loads(data: bytes):
    try:
        import orjson  # several times faster on large arrays; json decides whatever it refuses
    except ImportError:
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def read_records(data: bytes, ext: str, modified: datetime) -> Records:
    """The records of one object (ValueError, or Arrow's, when it is not KServe's)."""
    import io

    import numpy as np
    import pyarrow as pa

    if ext == "parquet":
        import pyarrow.parquet as pq

        source = pq.ParquetFile(io.BytesIO(data))
        names = set(source.schema_arrow.names)
        missing = {"id", "reqType", "bytes"} - names
        if missing:
            raise ValueError(f"no {', '.join(sorted(missing))} column")
        typed = "endpoint" in names and source.schema_arrow.field("endpoint").type in (pa.string(), pa.large_string())
        table = source.read(columns=["id", "reqType", "bytes", *(["endpoint"] if typed else [])])
        kinds, raw = table.column("reqType"), table.column("bytes")  # the other columns are not used
        is_request = _check(table.column("id"), kinds)
        ids = table.column("id").to_pylist()
        times = np.full(len(ids), int(modified.timestamp() * 1_000_000), dtype=np.int64)
        endpoints = _endpoints(table.column("endpoint")) if typed else None  # another type: not KServe's, unread
    else:
        doc = _loads(data)
        items = doc if isinstance(doc, list) else [doc]
        if not all(isinstance(i, dict) for i in items):
            raise ValueError("not LogRequest objects")
        ids, kinds = [i.get("id") for i in items], [i.get("reqType", "") for i in items]
        raw, times = [i.get("bytes") or "" for i in items], _micros([i.get("occurrenceTime") for i in items], modified)
        is_request = _check(ids, kinds)
        endpoints = _endpoints([i.get("endpoint") for i in items])
    bodies = None
    try:
        bodies = b64_bulk(raw if isinstance(raw, pa.ChunkedArray | pa.Array) else pa.array(raw))
    except pa.ArrowException:
        pass  # not all texts: decoded one by one below, which says which
    if bodies is None:
        raw = raw.to_pylist() if isinstance(raw, pa.ChunkedArray | pa.Array) else raw
        bodies = pa.array([_b64(r, i) for r, i in zip(raw, ids)], type=pa.binary())
    return Records(ids=ids, is_request=is_request, bodies=bodies, times=times, endpoints=endpoints)


__all__ = ["Records", "b64_bulk", "read_records"]

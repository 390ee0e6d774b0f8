"""V2 bodies decoded in bulk: one regular expression per body shape, run over a whole object at once.

Most logged traffic repeats one shape: every request holds one row, the same named inputs in the
same order, every response the same single output. Such a body is its *template* (the bytes
between the values: names, datatypes, shapes, parameters) with an atomic value in each ``data``
slot. :func:`request_template` / :func:`response_template` derive the template of a body (after
checking that the exact decoder in :mod:`.traffic` reads the same values from it); Arrow's RE2
kernel then matches every body of an object against it and captures the values, which Arrow
casts to numbers. A slot only matches a JSON number (numeric datatypes) or a string without
quotes or escapes (BYTES), so a body that matches has exactly the template's structure and
decodes to what the exact decoder would give; a body that does not match goes to the exact
decoder. Requests of several rows, single ``[n, k]`` inputs, BOOL tensors and escaped strings
always take the exact path.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mlops_ci.monitor.traffic import DecodeError, request_frame, response_scores

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

NUM = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
STR = r'[^"\\]*'
NUMERIC = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
DATA = '"data":['  # a slot opens with exactly this (a body spaced otherwise takes the exact path)
_DATA = re.compile(re.escape(DATA.encode()))
_NUM = re.compile(NUM)
_STR = re.compile(f'"{STR}"')
_RE2_SPECIAL = set("\\.+*?()|[]{}^$")


@dataclass(frozen=True)
class Template:
    """A body's shape: ``pattern`` (RE2, no groups) matches a body of it; each column's value is in
    the ``DATA`` slot of the same rank, read with its ``picks`` pattern (one group, ``v``)."""

    pattern: str
    columns: tuple[tuple[str, str], ...]  # (column name, "num" | "str")
    picks: tuple[str, ...]


def _literal(text: str) -> str:
    return "".join("\\" + ch if ch in _RE2_SPECIAL else ch for ch in text)


def _spans(body: bytes, count: int) -> list[tuple[int, int]] | None:
    """The byte spans inside each ``"data":[ ... ]`` of ``body``, when there are exactly ``count``."""
    spans = []
    for match in _DATA.finditer(body):
        end = body.find(b"]", match.end())
        if end < 0:
            return None
        spans.append((match.end(), end))
    return spans if len(spans) == count else None


def _build(body: bytes, spans: list[tuple[int, int]], slots: list[tuple[str, str, int]]) -> Template | None:
    """The template of ``body`` with each span a slot (name, kind, values in it: the last is read)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    parts, columns, picks, pos = ["^"], [], [], 0
    for (start, end), (name, kind, count) in zip(spans, slots):
        start, end = len(body[:start].decode()), len(body[:end].decode())  # byte -> character offsets
        value = text[start:end]
        if kind == "str":
            if count != 1 or not _STR.fullmatch(value):
                return None
            slot, pick = f'"{STR}"', r'^"(?P<v>[^"]*)"\]'
        else:
            values = value.split(",")
            if len(values) != count or not all(_NUM.fullmatch(v) for v in values):
                return None
            slot = f"(?:{NUM},){{{count - 1}}}{NUM}" if count > 1 else NUM
            pick = f"^(?:[^,\\]]*,){{{count - 1}}}(?P<v>[^,\\]]*)\\]" if count > 1 else r"^(?P<v>[^\]]*)\]"
        parts += [_literal(text[pos:start]), slot]
        columns.append((name, kind))
        picks.append(pick)
        pos = end
    parts += [_literal(text[pos:]), "$"]
    return Template(pattern="".join(parts), columns=tuple(columns), picks=tuple(picks))


def _one_row(item: dict) -> str | None:
    """The slot kind of a one-row input, or None when it is not one."""
    data, kind = item.get("data"), item.get("datatype")
    if item.get("shape") != [1] or not isinstance(data, list) or len(data) != 1:
        return None
    if kind in NUMERIC and isinstance(data[0], (int, float)) and not isinstance(data[0], bool):
        return "num"
    if kind == "BYTES" and isinstance(data[0], str):
        return "str"
    return None


def request_template(body: bytes) -> Template | None:
    """The template of a one-row request with named inputs (the pandas codec), or None."""
    try:
        doc = json.loads(body)
        frame = request_frame(body)
    except (ValueError, DecodeError):
        return None
    inputs = doc.get("inputs")
    if len(inputs) == 1 and (doc.get("parameters") or {}).get("content_type") != "pd":
        return None  # one [n, k] tensor: columns <name>_j, left to the exact decoder
    slots = []
    for item in inputs:
        kind = _one_row(item)
        if kind is None:
            return None
        slots.append((str(item.get("name") or f"input_{len(slots)}"), kind, 1))
    if len({s[0] for s in slots}) != len(slots) or list(frame.columns) != [s[0] for s in slots]:
        return None
    spans = _spans(body, len(inputs))
    template = None if spans is None else _build(body, spans, slots)
    if template is None or decode(_array([body]), template)[1] != {k: list(frame[k]) for k in frame.columns}:
        return None
    return template


def response_template(body: bytes) -> Template | None:
    """The template of a response with one numeric output of one row (``[1]`` or ``[1, k]``), or None."""
    try:
        doc = json.loads(body)
        scores = response_scores(body)
    except (ValueError, DecodeError):
        return None
    outputs = doc.get("outputs")
    if len(outputs) != 1 or len(scores) != 1:
        return None
    item = outputs[0]
    shape, data = item.get("shape"), item.get("data")
    if (item.get("datatype") not in NUMERIC or not isinstance(data, list) or not data
            or shape not in ([1], [1, len(data)])
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data)):
        return None
    spans = _spans(body, 1)
    template = None if spans is None else _build(body, spans, [("score", "num", len(data))])
    if template is None or decode(_array([body]), template)[1] != {"score": [float(scores[0])]}:
        return None
    return template


def _array(bodies: list[bytes]) -> pa.Array:
    import pyarrow as pa

    return pa.array(bodies, type=pa.binary())


def as_text(bodies: pa.Array) -> pa.Array:
    """The bodies as an Arrow string array; one that is not UTF-8 is null (the exact path reads it)."""
    import pyarrow as pa

    try:
        return bodies.cast(pa.string())
    except pa.ArrowInvalid:
        pass
    flags, ranks, n = [], [], 0
    for body in bodies.to_pylist():
        try:
            flags.append(body is not None and isinstance(body.decode("utf-8"), str))
        except UnicodeDecodeError:
            flags.append(False)
        ranks.append(n if flags[-1] else None)
        n += flags[-1]
    return bodies.filter(pa.array(flags)).cast(pa.string()).take(pa.array(ranks, type=pa.int64()))


def decode(bodies: pa.Array, template: Template) -> tuple[np.ndarray, dict[str, list]]:
    """Which bodies match ``template``, and their columns (numbers as float64, text as str)."""
    out, matched = decode_arrays(bodies, template)
    return matched, {name: array.to_pylist() for name, array in out.items()}


def decode_arrays(bodies: pa.Array, template: Template) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Like :func:`decode`, as Arrow arrays of the matching bodies only (numbers float64, text string).

    RE2 checks every body against the whole template in its DFA (no captures: several times faster
    than capturing twenty groups); the matching bodies are then split at the slots and each slot's
    value read with a short anchored pattern."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(bodies.type):
        bodies = as_text(bodies)
    ok = pc.match_substring_regex(bodies, template.pattern).fill_null(False)
    matched = ok.to_numpy(zero_copy_only=False).astype(bool)
    good = bodies if matched.all() else bodies.filter(ok)
    width = len(template.columns) + 1
    flat = pc.split_pattern(good, DATA).flatten()  # width parts per matching body
    out = {}
    for i, ((name, kind), pick) in enumerate(zip(template.columns, template.picks)):
        part = flat.take(pa.array(np.arange(i + 1, len(flat), width)))
        value = pc.extract_regex(part, pick).field("v")
        out[name] = pc.cast(value, pa.float64()) if kind == "num" else value
    return out, matched




# --- one object's records, checked as mlops_ci.monitor.logs checks them, and its bodies decoded ---


@dataclass
class Records:
    """One object's records: ids, which are requests, bodies (Arrow binary) and times (POSIX µs)."""

    ids: list[str]
    is_request: np.ndarray
    bodies: pa.Array
    times: np.ndarray


def _b64(raw, ident: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=True) if raw else b""
    except (binascii.Error, ValueError, TypeError) as err:
        raise ValueError(f"record {ident[:80]}: bytes are not base64 ({err})") from err


def _check(ids: list, kinds: list) -> np.ndarray:
    import numpy as np

    from mlops_ci.monitor.logs import KINDS

    for kind in set(kinds) - set(KINDS):
        raise ValueError(f"reqType {str(kind)[:80]!r} is not an inference request or response")
    if not all(isinstance(i, str) and i for i in ids):
        raise ValueError("a record without an id")
    return np.fromiter((KINDS[k] == "request" for k in kinds), dtype=bool, count=len(kinds))


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

        table = pq.read_table(io.BytesIO(data))
        missing = {"id", "reqType", "bytes"} - set(table.column_names)
        if missing:
            raise ValueError(f"no {', '.join(sorted(missing))} column")
        ids, kinds, raw = (table.column(c).to_pylist() for c in ("id", "reqType", "bytes"))
        times = np.full(len(ids), int(modified.timestamp() * 1_000_000), dtype=np.int64)
    else:
        doc = _loads(data)
        items = doc if isinstance(doc, list) else [doc]
        if not all(isinstance(i, dict) for i in items):
            raise ValueError("not LogRequest objects")
        ids, kinds = [i.get("id") for i in items], [i.get("reqType", "") for i in items]
        raw, times = [i.get("bytes") or "" for i in items], _micros([i.get("occurrenceTime") for i in items], modified)
    is_request = _check(ids, kinds)
    bodies = pa.array([_b64(r, i) for r, i in zip(raw, ids)], type=pa.binary())
    return Records(ids=ids, is_request=is_request, bodies=bodies, times=times)


def _bulk(bodies: pa.Array, templates: dict, key: str, derive) -> tuple[list[tuple[np.ndarray, dict]], np.ndarray]:
    """Bodies decoded by templates (tried: the last one used, then one derived from a body that did not
    match): [(positions, columns)], and the positions left for the exact decoder."""
    import numpy as np

    left = np.arange(len(bodies))
    text = as_text(bodies)
    parts = []
    for _ in range(3):
        if not len(left):
            break
        template = templates.get(key)
        if template is None:
            template = next((t for t in map(derive, bodies.take(left[:3]).to_pylist()) if t is not None), None)
            if template is None:
                break
            templates[key] = template
        columns, matched = decode_arrays(text.take(left) if len(left) != len(text) else text, template)
        if matched.any():
            parts.append((left[matched], columns))
        left = left[~matched]
        if len(left):
            templates.pop(key)  # derive another from what did not match
    return parts, left


def decode_requests(records: Records, templates: dict) -> tuple[list[tuple[np.ndarray, dict]], dict[int, object]]:
    """The requests' columns: [(positions among the requests, {column: Arrow array})] from the bulk path,
    and {position: DataFrame or the DecodeError} from the exact one."""
    bodies = records.bodies.filter(records.is_request) if not records.is_request.all() else records.bodies
    parts, left = _bulk(bodies, templates, "request", request_template)
    exact = {}
    for i, body in zip(left.tolist(), bodies.take(left).to_pylist() if len(left) else []):
        try:
            exact[i] = request_frame(body)
        except DecodeError as err:
            exact[i] = err
    return parts, exact


def decode_responses(records: Records, templates: dict) -> list:
    """Per response, in the object's order: its score (a float), scores (an array) or why not (a str)."""
    import numpy as np

    responses = ~records.is_request
    bodies = records.bodies.filter(responses) if not responses.all() else records.bodies
    out: list = [None] * len(bodies)
    parts, left = _bulk(bodies, templates, "response", response_template)
    for positions, columns in parts:
        for i, v in zip(positions.tolist(), columns["score"].to_pylist()):
            out[i] = v
    for i, body in zip(left.tolist(), bodies.take(left).to_pylist() if len(left) else []):
        try:
            scores = response_scores(body)
            out[i] = float(scores[0]) if len(scores) == 1 else np.asarray(scores, dtype=float)
        except DecodeError as err:
            out[i] = str(err)
    return out


__all__ = ["Records", "Template", "as_text", "decode", "decode_arrays", "decode_requests", "decode_responses",
           "read_records", "request_template", "response_template"]

"""V2 bodies decoded in bulk: every body of an object that has the shape of one seen before, at once.

Most logged traffic repeats one shape: every request holds one row, the same named inputs in the
same order, every response the same single output. Such a body is its *template*: the literal
bytes between the values (names, datatypes, shapes, parameters) with an atomic value in each
``"data":[...]`` slot. :func:`request_template` / :func:`response_template` derive the template of
a body (after checking that the exact decoder in :mod:`.traffic` reads the same values from it).

:func:`decode_arrays` then cuts every body of an object at its brackets (numpy finds every ``[``
and ``]`` in the object's buffer; a body with the template's number of each has its slots at the
template's ranks of them), and reads the cuts as one Arrow array of pieces over the same buffer
(no copy): the literal pieces are checked against the template's by hashing
(``index_in``), the slot pieces against a JSON number (numeric datatypes) or a string without
quotes or escapes (BYTES). A body that passes is the template with atomic values in its slots, so
it decodes to what the exact decoder would give; a body that does not goes to the exact decoder.
Requests of several rows, single ``[n, k]`` inputs, BOOL tensors and escaped strings always take
the exact path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_ci.monitor.objects import Records
from mlops_ci.monitor.traffic import DecodeError, request_frame, response_scores

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

NUM = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
NUMERIC = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
DATA = b'"data":['  # a slot opens with exactly this (a body spaced otherwise takes the exact path)
_DATA = re.compile(re.escape(DATA))
_NUM = re.compile(NUM.encode())
_STR = re.compile(rb'"[^"\\]*"')
STR_SLOT = r'^"[^"\\]*"$'


@dataclass(frozen=True)
class Template:
    """A body's shape: the literal pieces around its slots, and per slot the column it holds, how many
    values it holds (the last is read) and the ranks of the ``[`` that opens it and the ``]`` that
    closes it among the body's brackets; ``brackets`` counts both in a body of this shape."""

    literals: tuple[bytes, ...]
    columns: tuple[tuple[str, str], ...]  # (column name, "num" | "str")
    counts: tuple[int, ...]
    opens: tuple[int, ...]
    closes: tuple[int, ...]
    brackets: tuple[int, int]


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
    """The template of ``body`` with each span a slot (name, kind, values in it)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    literals, pos = [], 0
    for (start, end), (_, kind, count) in zip(spans, slots):
        value = body[start:end]
        if kind == "str" and (count != 1 or not _STR.fullmatch(value)):
            return None
        if kind == "num" and not (len(value.split(b",")) == count
                                  and all(_NUM.fullmatch(v) for v in value.split(b","))):
            return None
        literals.append(body[pos:start])
        pos = end
    literals.append(body[pos:])
    return Template(literals=tuple(literals), columns=tuple((name, kind) for name, kind, _ in slots),
                    counts=tuple(count for _, _, count in slots),
                    opens=tuple(body[:start].count(b"[") - 1 for start, _ in spans),
                    closes=tuple(body[:end].count(b"]") for _, end in spans),
                    brackets=(body.count(b"["), body.count(b"]")))


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


def decode(bodies: pa.Array, template: Template) -> tuple[np.ndarray, dict[str, list]]:
    """Which bodies match ``template``, and their columns (numbers as float64, text as str)."""
    out, matched = decode_arrays(bodies, template)
    return matched, {name: array.to_pylist() for name, array in out.items()}


def _cuts(bodies: pa.Array, template: Template) -> tuple[np.ndarray, pa.Array]:
    """The bodies with the template's number of brackets, each cut into its literal pieces, slots and
    the gap to the next: (their positions, the pieces as one binary array over the bodies' buffer)."""
    import numpy as np
    import pyarrow as pa

    n, k = len(bodies), len(template.columns)
    _, offsets_buf, data_buf = bodies.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[bodies.offset:bodies.offset + n + 1].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, dtype=np.uint8)
    region = data[offsets[0]:offsets[-1]]
    opens, closes = np.flatnonzero(region == ord("[")) + offsets[0], np.flatnonzero(region == ord("]")) + offsets[0]
    first_open, first_close = np.searchsorted(opens, offsets[:-1]), np.searchsorted(closes, offsets[:-1])
    fits = ((np.searchsorted(opens, offsets[1:]) - first_open == template.brackets[0])
            & (np.searchsorted(closes, offsets[1:]) - first_close == template.brackets[1]))
    rows = np.flatnonzero(fits)
    bounds = np.empty((len(rows), 2 * k + 2), dtype=np.int64)
    bounds[:, 0], bounds[:, -1] = offsets[rows], offsets[rows + 1]
    bounds[:, 1:-1:2] = opens[first_open[rows, None] + np.asarray(template.opens, dtype=np.int64)] + 1
    bounds[:, 2:-1:2] = closes[first_close[rows, None] + np.asarray(template.closes, dtype=np.int64)]
    ordered = (np.diff(bounds, axis=1) >= 0).all(axis=1)  # the slots in the template's order
    rows, bounds = rows[ordered], bounds[ordered]
    flat = np.append(bounds.ravel(), bounds[-1, -1] if len(bounds) else 0)  # the last gap: empty
    wide = len(flat) and flat[-1] >= 2**31
    pieces = pa.Array.from_buffers(pa.large_binary() if wide else pa.binary(), len(flat) - 1,
                                   [None, pa.py_buffer(flat.astype(np.int64 if wide else np.int32)), data_buf])
    return rows, pieces


def _texts(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Binary values as UTF-8 text, and which were (one that is not comes back null)."""
    import numpy as np
    import pyarrow as pa

    try:
        return values.cast(pa.string()), np.ones(len(values), dtype=bool)
    except pa.ArrowInvalid:
        good = []
        for v in values.to_pylist():
            try:
                good.append(v.decode("utf-8"))
            except UnicodeDecodeError:
                good.append(None)
        return pa.array(good, type=pa.string()), np.array([g is not None for g in good], dtype=bool)


def _numbers(values: pa.Array) -> pa.Array:
    """JSON numbers as float64 (Python's float where Arrow refuses one, as for 1e400: inf, as json reads it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = values.cast(pa.string())
    try:
        return pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        return pa.array([float(v) for v in text.to_pylist()], type=pa.float64())


def decode_arrays(bodies: pa.Array, template: Template) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Like :func:`decode`, as Arrow arrays of the matching bodies only (numbers float64, text string)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(bodies, pa.ChunkedArray):
        bodies = bodies.combine_chunks()
    bodies = bodies.cast(pa.binary()).fill_null(b"")
    matched = np.zeros(len(bodies), dtype=bool)
    k = len(template.columns)
    rows, pieces = _cuts(bodies, template) if len(bodies) else (np.zeros(0, dtype=np.int64), None)
    if not len(rows):
        return {name: pa.array([], type=pa.float64() if kind == "num" else pa.string())
                for name, kind in template.columns}, matched
    width, m = 2 * k + 2, len(rows)
    known = list(dict.fromkeys(template.literals))
    found = pc.index_in(pieces, value_set=pa.array(known, type=pieces.type)).fill_null(-1).to_numpy()
    ok = (found.reshape(m, width)[:, 0:-1:2] == [known.index(lit) for lit in template.literals]).all(axis=1)
    slots = pieces.take(pa.array((np.arange(m)[None, :] * width + 2 * np.arange(k)[:, None] + 1).ravel()))
    values = []
    for i, ((_, kind), count) in enumerate(zip(template.columns, template.counts)):
        value = slots.slice(i * m, m)
        if kind == "str":
            ok &= pc.match_substring_regex(value, STR_SLOT).to_numpy(zero_copy_only=False)
            text, valid = _texts(pc.binary_slice(value, 1, -1))
            ok &= valid
            values.append(text)
            continue
        ok &= pc.match_substring_regex(value, f"^{NUM}(?:,{NUM}){{{count - 1}}}$").to_numpy(zero_copy_only=False)
        if count > 1:
            value = pc.extract_regex(value.cast(pa.string()), r",(?P<v>[^,]*)$").field("v")
        values.append(value)
    keep = pa.array(ok)
    out = {}
    for (name, kind), value in zip(template.columns, values):
        value = value.filter(keep)
        out[name] = value if kind == "str" else _numbers(value)
    matched[rows[ok]] = True
    return out, matched


def _bulk(bodies: pa.Array, templates: dict, key: str, derive) -> tuple[list[tuple[np.ndarray, dict]], np.ndarray]:
    """Bodies decoded by templates (tried: the last one used, then one derived from a body that did not
    match): [(positions, columns)], and the positions left for the exact decoder."""
    import numpy as np

    left = np.arange(len(bodies))
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
        columns, matched = decode_arrays(bodies.take(left) if len(left) != len(bodies) else bodies, template)
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


__all__ = ["Template", "decode", "decode_arrays", "decode_requests", "decode_responses", "request_template",
           "response_template"]

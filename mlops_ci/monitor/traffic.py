"""Logged traffic as a table: V2 inference bodies decoded into feature columns, each request paired
with its response by id, the prediction taken from the response.

A V2 request (the Open Inference protocol MLServer speaks) carries named input tensors. With the
pandas codec (``parameters.content_type: pd``, what mlops-ci's serving check and MLServer's
clients send) or several inputs, each input is a column; a single input of shape ``[n, k]`` is
``k`` columns ``<name>_0`` .. ``<name>_<k-1>``. The response's first output is the prediction; a
two-column output is scored as the evaluation scores it (the last column: P(class 1)).

KServe's agent logs which predictor answered (``endpoint``: the pod label ``endpoint`` it was
started with; mlops-ci labels a rollout's canary ``canary`` and the primary ``default``). When a
request read names an endpoint other than ``default``, the frame has an :data:`ENDPOINT` column
(``default`` where a record names none); traffic of the primary alone, or logged without
endpoints, keeps the frame it always had (a frame without the column is all the primary's).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlops_ci.metrics import row_scores
from mlops_ci.monitor.logs import Corrupt, Entry

PREDICTION = "prediction"
ID, TIME, ENDPOINT = "_request_id", "_time", "_endpoint"
PRIMARY, CANARY = "default", "canary"  # the endpoints KServe's agent logs for a primary and its canary


class DecodeError(ValueError):
    """A body that is not a V2 inference request or response."""


def _values(item: dict, rows: int | None = None) -> np.ndarray:
    data, shape = item.get("data"), item.get("shape")
    if not isinstance(data, list) or not isinstance(shape, list) or not shape:
        raise DecodeError(f"input {str(item.get('name'))[:60]!r} has no data or shape")
    kind = item.get("datatype")
    arr = np.asarray(data, dtype=object if kind == "BYTES" else float).reshape(-1)
    size = int(np.prod(shape))
    if arr.size != size:
        raise DecodeError(f"input {str(item.get('name'))[:60]!r}: {arr.size} values for shape {shape}")
    return arr.reshape([int(n) for n in shape])


def _tensors(body: bytes, key: str) -> tuple[dict, list | None]:
    """The body's JSON object and its list under ``key`` (``inputs`` or ``outputs``)."""
    try:
        doc = json.loads(body)
    except ValueError as err:
        raise DecodeError(f"not JSON ({err})") from err
    if not isinstance(doc, dict):
        raise DecodeError("not a JSON object")
    items = doc.get(key)
    return doc, items if isinstance(items, list) and items and all(isinstance(i, dict) for i in items) else None


def request_frame(body: bytes) -> pd.DataFrame:
    """The feature rows of one V2 request body."""
    doc, inputs = _tensors(body, "inputs")
    if inputs is None:
        raise DecodeError("no V2 inputs (the V1 protocol's instances are not read)")
    columns: dict[str, np.ndarray] = {}
    if len(inputs) == 1 and (doc.get("parameters") or {}).get("content_type") != "pd":
        arr = _values(inputs[0])
        name = str(inputs[0].get("name") or "input")
        if arr.ndim == 2 and arr.shape[1] > 1:
            return pd.DataFrame({f"{name}_{j}": arr[:, j] for j in range(arr.shape[1])})
        return pd.DataFrame({name: arr.reshape(len(arr), -1)[:, 0]})
    for item in inputs:
        arr = _values(item)
        columns[str(item.get("name") or f"input_{len(columns)}")] = arr.reshape(len(arr), -1)[:, 0]
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise DecodeError(f"inputs of different lengths {sorted(lengths)}")
    frame = pd.DataFrame(columns)
    for name in frame.columns:  # numbers sent as BYTES stay text; numeric tensors are float
        if frame[name].dtype == object:
            frame[name] = frame[name].map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
    return frame


def response_scores(body: bytes) -> np.ndarray:
    """One score per row from a V2 response body's first output."""
    _, outputs = _tensors(body, "outputs")
    if outputs is None:
        raise DecodeError("no V2 outputs")
    try:
        arr = _values(outputs[0]).astype(float)
    except (TypeError, ValueError) as err:
        raise DecodeError(f"the first output is not numeric ({err})") from err
    return row_scores(arr).reshape(-1)


@dataclass
class Traffic:
    """Paired rows, and what could not be used (each counted, the first reasons kept)."""

    frame: pd.DataFrame
    requests: int = 0  # logged requests read
    unanswered: int = 0  # requests whose response was not logged (yet)
    orphans: int = 0  # responses without their request
    undecodable: int = 0
    corrupt: list[Corrupt] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the first few decoding errors

    def note(self, text: str) -> None:
        if len(self.problems) < 5:
            self.problems.append(text)


def pair(objects: Iterable[tuple[str, list[Entry] | Corrupt]]) -> Traffic:
    """Requests joined with their responses by id: one row per predicted row, the features, the
    prediction (NaN for a request not answered), the request id, its time and, when the logs name
    them, the endpoint that answered."""
    requests: dict[str, Entry] = {}
    responses: dict[str, Entry] = {}
    traffic = Traffic(frame=pd.DataFrame())
    for _, got in objects:
        if isinstance(got, Corrupt):
            traffic.corrupt.append(got)
            continue
        for entry in got:
            (requests if entry.kind == "request" else responses)[entry.id] = entry
    traffic.requests = len(requests)
    traffic.orphans = len(set(responses) - set(requests))
    parts, endpoints = [], []
    for ident, req in requests.items():
        try:
            rows = request_frame(req.body)
        except DecodeError as err:
            traffic.undecodable += 1
            traffic.note(f"request {ident[:60]}: {err}")
            continue
        scores = np.full(len(rows), np.nan)
        answer = responses.get(ident)
        if answer is None:
            traffic.unanswered += 1
        else:
            try:
                got = response_scores(answer.body)
                if len(got) != len(rows):
                    raise DecodeError(f"{len(got)} predictions for {len(rows)} rows")
                scores = got
            except DecodeError as err:
                traffic.undecodable += 1
                traffic.note(f"response {ident[:60]}: {err}")
        rows[PREDICTION] = scores
        rows[ID] = ident
        rows[TIME] = req.time
        parts.append(rows)
        endpoints.append(req.endpoint)
    traffic.frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[PREDICTION, ID, TIME])
    if any(e and e != PRIMARY for e in endpoints):  # one column at the end, not one more per request
        traffic.frame[ENDPOINT] = np.repeat(np.array([e or PRIMARY for e in endpoints], dtype=object),
                                            [len(p) for p in parts])
    return traffic


__all__ = ["CANARY", "ENDPOINT", "ID", "PREDICTION", "PRIMARY", "TIME", "DecodeError", "Traffic", "pair",
           "request_frame", "response_scores"]

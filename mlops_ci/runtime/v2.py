"""The V2 (Open Inference) protocol's JSON, as MLServer decodes it for an MLflow model.

A request carries one input per column, named as the column, with ``content_type: pd`` so the
runtime rebuilds the DataFrame the model's ``predict`` gets; text columns say ``str`` so they
arrive as strings, not bytes. Missing values cannot travel in JSON numbers: a row with one is
left out of what is sent (:func:`sendable`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

_KINDS = {"f": "FP64", "i": "INT64", "u": "UINT64", "b": "BOOL"}
_SIZED = {"float32": "FP32", "int32": "INT32", "int16": "INT16", "int8": "INT8", "uint8": "UINT8"}


def datatype(series: pd.Series) -> str:
    return _SIZED.get(str(series.dtype)) or _KINDS.get(series.dtype.kind, "BYTES")


def sendable(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with no missing value (what a V2 JSON request can carry)."""
    return frame.dropna()


def request(frame: pd.DataFrame) -> dict[str, Any]:
    inputs = []
    for name in frame.columns:
        column = frame[name]
        kind = datatype(column)
        item: dict[str, Any] = {"name": str(name), "shape": [len(column)], "datatype": kind,
                                "data": [str(v) for v in column] if kind == "BYTES" else column.tolist()}
        if kind == "BYTES":
            item["parameters"] = {"content_type": "str"}
        inputs.append(item)
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def request_json(frame: pd.DataFrame) -> str:
    return json.dumps(request(frame), separators=(",", ":"), allow_nan=False)


def outputs(response: dict[str, Any]) -> np.ndarray:
    """The first output of a V2 response as an array of its shape."""
    items = response.get("outputs")
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise ValueError("the response has no outputs")
    first = items[0]
    data, shape = first.get("data"), first.get("shape")
    if not isinstance(data, list) or not isinstance(shape, list):
        raise ValueError("the response's first output has no data or shape")
    return np.asarray(data, dtype=float).reshape([int(n) for n in shape])

"""Writing payload logs in KServe's storage layout (what its agent writes; :mod:`.logs` reads it).

For the receiver of KServe's CloudEvents and the demo's simulated traffic: the same object names
(``pkg/logger/store.go``), the same JSON (``pkg/logger/types.go``'s ``LogRequest``: a batch of
one is an object, more an array) and Parquet columns (``pkg/logger/marshaller_record.go``). An
object is written to a temporary name, flushed, fsynced and renamed: a reader never sees half.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

from mlops_ci.monitor.logs import REQUEST, RESPONSE, Entry

# marshaller_record.go's logRecord columns, in its order
RECORD_COLUMNS = ("url", "bytes", "contentType", "reqType", "id", "sourceUri", "inferenceService", "namespace",
                  "component", "endpoint", "metadata", "annotations", "certName", "tlsSkipVerify")
REQ_TYPES = {"request": REQUEST, "response": RESPONSE}


def _log_request(e: Entry, namespace: str) -> dict:
    out = {"bytes": base64.b64encode(e.body).decode("ascii"), "contentType": e.content_type or "application/json",
           "reqType": REQ_TYPES[e.kind], "id": e.id, "inferenceService": e.inference_service,
           "namespace": namespace, "component": e.component, "endpoint": e.endpoint,
           "occurrenceTime": e.time.astimezone(UTC).isoformat().replace("+00:00", "Z")}
    return {k: v for k, v in out.items() if v != "" or k == "occurrenceTime"}  # Go's omitempty


def encode_json(batch: Sequence[Entry], namespace: str = "") -> bytes:
    items = [_log_request(e, namespace) for e in batch]
    return json.dumps(items[0] if len(items) == 1 else items, separators=(",", ":")).encode()


@functools.cache
def _record_schema():  # pyarrow is imported on first use
    import pyarrow as pa

    return pa.schema([(c, pa.bool_() if c == "tlsSkipVerify" else pa.string()) for c in RECORD_COLUMNS])


def encode_parquet(batch: Sequence[Entry], namespace: str = "") -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(batch)  # built column by column, without a dict per row
    columns = {"bytes": [base64.b64encode(e.body).decode("ascii") for e in batch],
               "contentType": [e.content_type or "application/json" for e in batch],
               "reqType": [REQ_TYPES[e.kind] for e in batch], "id": [e.id for e in batch],
               "inferenceService": [e.inference_service for e in batch], "namespace": [namespace] * n,
               "component": [e.component for e in batch], "endpoint": [e.endpoint for e in batch],
               "tlsSkipVerify": [False] * n}
    schema = _record_schema()
    arrays = [pa.array(columns.get(c, [""] * n), type=schema.field(c).type) for c in RECORD_COLUMNS]
    out = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), out)
    return out.getvalue()


ENCODERS = {"json": encode_json, "parquet": encode_parquet}


def object_path(root: Path, first: Entry, *, namespace: str, store_path: str, marshaller: str) -> Path:
    """Where KServe's agent writes a batch: named after its first record."""
    parts = [p for p in (namespace, first.inference_service, first.component, store_path) if p]
    return Path(root, *parts) / f"{first.id}-{first.kind}.{marshaller}"


def write_batch(root: Path, batch: Sequence[Entry], *, namespace: str = "", store_path: str = "",
                marshaller: str = "json") -> Path:
    """Write ``batch`` as one object under ``root`` (durably: temporary name, fsync, rename)."""
    path = object_path(root, batch[0], namespace=namespace, store_path=store_path, marshaller=marshaller)
    data = ENCODERS[marshaller](batch, namespace)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself survives a crash
        finally:
            os.close(folder)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["ENCODERS", "RECORD_COLUMNS", "encode_json", "encode_parquet", "object_path", "write_batch"]

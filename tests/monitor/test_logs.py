"""KServe's payload logs in storage, read back as traffic: real files in its layout (the JSON and
Parquet marshallers), V2 bodies decoded, requests paired with responses, corrupt objects skipped."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlops_ci.monitor.logs import REQUEST, Corrupt, Entry, read_objects
from mlops_ci.monitor.store import RECORD_COLUMNS, write_batch
from mlops_ci.monitor.traffic import ID, PREDICTION, TIME, pair, request_frame
from mlops_ci.runtime import v2

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def v2_response(scores, *, two_columns: bool = False) -> bytes:
    data = [[1 - s, s] for s in scores] if two_columns else list(scores)
    shape = [len(scores), 2] if two_columns else [len(scores)]
    return json.dumps({"model_name": "churn", "outputs": [{"name": "output-1", "shape": shape, "datatype": "FP64",
                                                           "data": np.asarray(data).reshape(-1).tolist()}]}).encode()


def traffic_entries(n: int, *, start: datetime = T0, shift: float = 0.0) -> list[Entry]:
    """n requests of one row each (the pandas codec, a text column too) and their responses."""
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        row = pd.DataFrame({"tenure": [float(rng.normal(20 + shift, 5))], "plan": [["basic", "pro"][i % 2]]})
        when = start + timedelta(minutes=i)
        common = {"inference_service": "churn", "component": "predictor", "endpoint": "default"}
        out.append(Entry(id=f"req-{i:04d}", kind="request", body=v2.request_json(row).encode(), time=when, **common))
        out.append(Entry(id=f"req-{i:04d}", kind="response", body=v2_response([0.1 + i / (2 * n)], two_columns=True),
                         time=when + timedelta(milliseconds=20), **common))
    return out


def test_a_json_object_as_kserve_s_agent_writes_it_is_read():
    """A LogRequest as Go's encoding/json writes it (pkg/logger/types.go: []byte as base64,
    omitempty fields left out, occurrenceTime RFC 3339), built by hand, not by our writer."""
    body = b'{"inputs":[{"name":"tenure","shape":[1],"datatype":"FP64","data":[12.5]}],"parameters":{"content_type":"pd"}}'
    text = json.dumps({"bytes": base64.b64encode(body).decode(), "contentType": "application/json",
                       "reqType": "org.kubeflow.serving.inference.request", "id": "5f2c-77",
                       "inferenceService": "churn", "namespace": "models", "component": "predictor",
                       "endpoint": "default", "metadata": {"Traceparent": ["00-ab-cd-01"]},
                       "occurrenceTime": "2026-12-01T12:00:03.123456789Z"})
    from mlops_ci.monitor.logs import parse_json

    (entry,) = parse_json(text.encode(), T0)
    assert (entry.id, entry.kind, entry.body, entry.inference_service) == ("5f2c-77", "request", body, "churn")
    assert entry.time == datetime(2026, 12, 1, 12, 0, 3, 123456, tzinfo=UTC)
    assert request_frame(entry.body)["tenure"].tolist() == [12.5]


@pytest.mark.parametrize("marshaller", ["json", "parquet"])
def test_batches_in_kserve_s_layout_are_paired_into_rows(tmp_path, marshaller):
    entries = traffic_entries(30)
    requests = [e for e in entries if e.kind == "request"]
    responses = [e for e in entries if e.kind == "response"]
    # batches as the agent cuts them: requests and responses in separate objects, named by the first
    for chunk in (requests[:1], requests[1:20], requests[20:], responses[:25], responses[25:28]):
        write_batch(tmp_path, chunk, namespace="models", store_path="logs", marshaller=marshaller)
    first = tmp_path / "models" / "churn" / "predictor" / "logs" / f"req-0000-request.{marshaller}"
    assert first.is_file()
    if marshaller == "parquet":  # marshaller_record.go's columns, in its order
        assert tuple(pq.read_schema(first).names) == RECORD_COLUMNS
    else:  # a batch of one is a single object, more an array
        assert isinstance(json.loads(first.read_text()), dict)
    traffic = pair(read_objects(str(tmp_path)))
    frame = traffic.frame
    assert traffic.requests == 30 and traffic.unanswered == 2 and traffic.orphans == 0 and not traffic.corrupt
    assert len(frame) == 30 and set(frame.columns) == {"tenure", "plan", PREDICTION, ID, TIME}
    assert frame["plan"].tolist()[:2] == ["basic", "pro"]
    answered = frame.dropna(subset=[PREDICTION]).sort_values(ID)
    assert answered[PREDICTION].tolist() == pytest.approx([0.1 + i / 60 for i in range(28)])  # P(class 1)
    if marshaller == "json":  # the record's own time; Parquet records have none (the object's time is used)
        assert frame.set_index(ID).loc["req-0005", TIME] == T0 + timedelta(minutes=5)


def test_a_corrupt_object_is_skipped_with_a_finding_and_the_rest_is_read(tmp_path):
    entries = traffic_entries(4)
    write_batch(tmp_path, [e for e in entries if e.kind == "request"], namespace="models")
    write_batch(tmp_path, [e for e in entries if e.kind == "response"], namespace="models", marshaller="parquet")
    folder = tmp_path / "models" / "churn" / "predictor"
    (folder / "torn-request.json").write_text('{"id": "x", "reqType": "org.kub')  # cut mid-write
    (folder / "junk-response.parquet").write_bytes(b"PAR1 not really")
    (folder / "bad64-request.json").write_text(json.dumps({"id": "y", "reqType": REQUEST, "bytes": "@@@"}))
    (folder / "README.txt").write_text("not a log object: ignored")
    traffic = pair(read_objects(str(tmp_path)))
    assert sorted(Path(c.path).name for c in traffic.corrupt) == ["bad64-request.json", "junk-response.parquet",
                                                                    "torn-request.json"]
    assert all(isinstance(c, Corrupt) and c.reason for c in traffic.corrupt)
    assert traffic.requests == 4 and traffic.frame[PREDICTION].notna().all()


def test_bodies_that_are_not_v2_are_counted_not_fatal(tmp_path):
    good = traffic_entries(2)
    v1 = Entry(id="v1", kind="request", body=b'{"instances": [[1, 2]]}', time=T0, inference_service="churn")
    short = Entry(id="req-0000", kind="response", body=v2_response([0.1, 0.2]), time=T0, inference_service="churn")
    orphan = Entry(id="gone", kind="response", body=v2_response([0.5]), time=T0, inference_service="churn")
    write_batch(tmp_path, [e for e in good if e.kind == "request"] + [v1])
    write_batch(tmp_path, [short, good[3], orphan])
    traffic = pair(read_objects(str(tmp_path)))
    assert traffic.undecodable == 2 and traffic.orphans == 1 and len(traffic.frame) == 2
    assert any("instances are not read" in p for p in traffic.problems)
    assert any("2 predictions for 1 rows" in p for p in traffic.problems)


def test_a_single_tensor_input_becomes_one_column_per_feature():
    body = json.dumps({"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32",
                                   "data": [1, 2, 3, 4, 5, 6]}]}).encode()
    frame = request_frame(body)
    assert list(frame.columns) == ["x_0", "x_1", "x_2"] and frame["x_2"].tolist() == [3.0, 6.0]


def test_objects_are_chosen_by_their_time(tmp_path):
    entries = traffic_entries(2)
    old = write_batch(tmp_path, entries[:2], marshaller="parquet")
    new = write_batch(tmp_path, entries[2:], marshaller="parquet")
    os.utime(old, (T0.timestamp(), T0.timestamp()))
    os.utime(new, ((T0 + timedelta(days=1)).timestamp(),) * 2)
    names = [Path(p).name for p, _ in read_objects(str(tmp_path), since=T0 + timedelta(hours=1))]
    assert names == [new.name]
    (got,) = [g for p, g in read_objects(str(tmp_path), until=T0 + timedelta(hours=1))]
    assert {e.time for e in got} == {T0}  # Parquet records carry no time: the object's is theirs

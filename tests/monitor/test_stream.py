"""The streaming path (mlops_ci.monitor.stream) against the frame path (traffic.pair + windows.analyse)
on planted traffic in KServe's layout, both marshallers; and a fanned-out run (shards profiled apart,
their profiles through JSON, merged) against the single-process one."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import tiny_frame

from mlops_ci.checks.profiler import ProfileOptions, profile_table
from mlops_ci.config.monitoring import MonitoringConfig
from mlops_ci.monitor import stream, stream_merge
from mlops_ci.monitor.bulk import decode, request_template, response_template
from mlops_ci.monitor.logs import Entry, read_objects
from mlops_ci.monitor.store import write_batch
from mlops_ci.monitor.traffic import pair, request_frame, response_scores
from mlops_ci.monitor.windows import analyse, split
from mlops_ci.runtime import v2

UNTIL = datetime(2026, 12, 4, tzinfo=UTC)
DAY = timedelta(days=1)
W = {"w": [1.5, -1.0], "b": 0.2}
SETTINGS = MonitoringConfig(min_rows=50)


def reference() -> dict:
    train = tiny_frame(2000, seed=1)[["x1", "x2", "color"]]
    options = ProfileOptions()
    scores = 1 / (1 + np.exp(-(W["w"][0] * train["x1"] + W["w"][1] * train["x2"] + W["b"])))
    return {"schema": 1, "model": "tiny", "options": asdict(options), "label": "label",
            "profiles": {"train": profile_table(pa.Table.from_pandas(train), options=options).to_json(),
                         "predictions": profile_table(pa.table({"prediction": scores.to_numpy()}),
                                                      options=options).to_json()}}


def response(scores) -> bytes:
    return json.dumps({"model_name": "tiny", "outputs": [{"name": "p", "shape": [len(scores)], "datatype": "FP64",
                                                          "data": [float(s) for s in scores]}]},
                      separators=(",", ":")).encode()


def write_traffic(root, marshaller: str) -> None:
    """Three days (the middle one shifted), a quiet fourth window, and the awkward cases: requests of
    two rows, an undecodable body, a request never answered, a response without its request, one
    answer that is not numeric, batches cut so that pairs straddle objects, and a corrupt object."""
    entries = []
    for day, (rows, shift) in enumerate([(700, 0.0), (700, 2.5), (30, 0.0)]):
        frame = tiny_frame(rows, seed=20 + day, shift=shift)[["x1", "x2", "color"]]
        when0 = UNTIL - (3 - day) * DAY
        for i in range(rows):
            part = frame.iloc[i:i + (1 if i % 50 else 2)]  # every 50th request holds two rows
            rid, when = f"{when0:%m%d}-{i:05d}", when0 + timedelta(seconds=60 * i)
            scores = 1 / (1 + np.exp(-(W["w"][0] * part["x1"] + W["w"][1] * part["x2"] + W["b"])))
            body = v2.request_json(part).encode() if i != 7 else b'{"inputs": "not tensors"}'
            common = {"time": when, "inference_service": "tiny", "component": "predictor"}
            entries.append(Entry(id=rid, kind="request", body=body, **common))
            if i == 11:
                continue  # never answered
            answer = response(scores) if i != 13 else b'{"outputs":[{"name":"p","shape":[1],"datatype":"BYTES","data":["x"]}]}'
            entries.append(Entry(id=rid, kind="response", body=answer, **common))
    entries.append(Entry(id="orphan-1", kind="response", body=response([0.5]), time=UNTIL - DAY, inference_service="tiny",
                         component="predictor"))
    for start in range(0, len(entries), 37):  # odd: pairs straddle objects
        batch = entries[start:start + 37]
        path = write_batch(root, batch, namespace="tiny-staging", marshaller=marshaller)
        written = batch[-1].time.timestamp()
        os.utime(path, (written, written))  # the Parquet marshaller's time is the object's
    bad = root / "tiny-staging" / "tiny" / "predictor" / f"zz-request.{marshaller}"
    bad.write_bytes(b"\x00 not a log object")


def frame_results(root, ref):
    traffic = pair(read_objects(str(root)))
    results = [analyse(ref, start, end, rows, SETTINGS) for start, end, rows in
               split(traffic.frame, until=UNTIL, width=DAY, count=4)]
    return traffic, results


def close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("marshaller", ["json", "parquet"])
def test_the_stream_path_finds_what_the_frame_path_finds(tmp_path, marshaller):
    write_traffic(tmp_path, marshaller)
    ref = reference()
    traffic, expected = frame_results(tmp_path, ref)
    profiles = stream.profile_objects(stream.list_objects(str(tmp_path)), ref, stream.windows_ending(UNTIL, DAY, 4))
    got = stream_merge.analyse(ref, profiles, SETTINGS)
    counts = stream_merge.traffic_counts(profiles)
    assert counts == {"objects": counts["objects"], "corrupt": len(traffic.corrupt), "requests": traffic.requests,
                      "unanswered": traffic.unanswered, "orphans": traffic.orphans,
                      "undecodable": traffic.undecodable}
    assert counts["corrupt"] == 1 and counts["unanswered"] == 3 and counts["orphans"] == 1
    assert profiles.counts.bulk > 10 * profiles.counts.exact > 0  # most bodies in bulk, the odd ones exactly
    assert expected[0].status == expected[3].status == "insufficient data" and expected[2].status == "fail"
    for g, e in zip(got, expected):
        assert (g.start, g.end, g.rows, g.requests, g.status) == (e.start, e.end, e.rows, e.requests, e.status)
        key = lambda f: (f.dataset, f.check, f.column, f.metric, f.status)
        assert sorted(map(key, g.findings)) == sorted(map(key, e.findings))
        for gf, ef in zip(sorted(g.findings, key=key), sorted(e.findings, key=key)):
            assert close(gf.value, ef.value) and gf.threshold == ef.threshold
        assert [c.column for c in g.columns] == [c.column for c in e.columns]
        for gc, ec in zip(g.columns, e.columns):
            assert gc.status == ec.status
            assert close(gc.psi, ec.psi) and close(gc.js, ec.js) and close(gc.wasserstein, ec.wasserstein)
            assert close(gc.head_null_rate, ec.head_null_rate)


def same_profile(a, b) -> None:
    """Two TableProfiles equal: counts, histograms, categories and samples exactly, moments to rounding."""
    if a is None or b is None:
        assert a is b
        return
    a, b = a.to_json(), b.to_json()
    for side in (a, b):
        side.pop("source")
    for name in a["columns"]:
        ca, cb = a["columns"][name], b["columns"][name]
        for moment in ("mean", "std"):
            assert close(ca.pop(moment), cb.pop(moment)), (name, moment)
        ca["categories"], cb["categories"] = sorted(ca["categories"].items()), sorted(cb["categories"].items())
    assert a == b


@pytest.mark.parametrize("marshaller", ["json", "parquet"])
def test_a_fanned_out_profile_equals_the_single_process_one(tmp_path, marshaller):
    write_traffic(tmp_path, marshaller)
    ref, windows = reference(), stream.windows_ending(UNTIL, DAY, 4)
    paths = stream.list_objects(str(tmp_path))
    single = stream.profile_objects(paths, ref, windows)
    straddled = 0
    for k in (2, 3, 7):
        shards = stream_merge.shard_objects(paths, k)
        assert sorted(p for s in shards for p in s) == sorted(paths) and all(shards)
        # as separate processes would hand them over: JSON text
        parts = [stream.WindowProfiles.from_json(json.loads(json.dumps(stream.profile_objects(s, ref, windows)
                                                                       .to_json()))) for s in shards]
        straddled += sum(len(p.pending) + len(p.waiting) for p in parts) - len(single.pending) - len(single.waiting)
        merged = stream_merge.merge(parts)
        assert merged.rows == single.rows and merged.requests == single.requests
        assert merged.outside == single.outside and merged.counts == single.counts
        assert merged.pending == single.pending and merged.waiting.keys() == single.waiting.keys()
        assert (merged.unanswered, merged.orphans) == (single.unanswered, single.orphans)
        for w in range(len(windows)):
            same_profile(merged.features[w], single.features[w])
            same_profile(merged.predictions[w], single.predictions[w])
        merged_results = stream_merge.analyse(ref, merged, SETTINGS)
        single_results = stream_merge.analyse(ref, single, SETTINGS)
        assert [(r.status, len(r.findings)) for r in merged_results] == [(r.status, len(r.findings))
                                                                          for r in single_results]
    assert straddled > 0  # some pairs were split across shards and paired in the merge


def test_bulk_decoding_reads_what_the_exact_decoder_reads():
    frame = pd.DataFrame({"a": [1.25], "b": ["x y"], "c": [3]})
    body = v2.request_json(frame).encode()
    template = request_template(body)
    assert template is not None and [c for c, _ in template.columns] == ["a", "b", "c"]
    other = v2.request_json(pd.DataFrame({"a": [-2e-5], "b": ["x, z"], "c": [12345678901]})).encode()
    odd = [body.replace(b'"x y"', b'"x\\"y"'),  # an escape (as json.dumps writes any non-ASCII text)
           body.replace(b"1.25", b"NaN"), body.replace(b'"shape":[1]', b'"shape":[1 ]', 1), b"\xff\xfe"]
    matched, columns = decode(pa.array([body, other, *odd], type=pa.binary()), template)
    assert matched.tolist() == [True, True, False, False, False, False]
    for i, b in enumerate([body, other]):
        exact = request_frame(b)
        assert {k: v[i] for k, v in columns.items()} == {k: exact[k].iloc[0] for k in exact.columns}
    two = b'{"outputs":[{"name":"p","shape":[1,2],"datatype":"FP32","data":[0.25,0.75]}]}'
    template = response_template(two)
    matched, columns = decode(pa.array([two, two.replace(b"0.75", b"1E+2")], type=pa.binary()), template)
    assert matched.all() and columns["score"] == [float(response_scores(two)[0]), 100.0]
    assert response_template(b'{"outputs":[{"name":"p","shape":[2],"datatype":"FP64","data":[0.1,0.2]}]}') is None

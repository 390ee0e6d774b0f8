"""The CloudEvents receiver for KServe's payload logger (mlops_ci.monitor.receiver), driven by the
CloudEvents SDK as the sender: binary and structured events round-trip into KServe's storage layout,
malformed and oversized events are refused and counted, an event is acknowledged only once its
segment is durable (SIGKILL mid-stream loses nothing acknowledged), SIGTERM flushes, and the buffer
stays bounded."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import requests
from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent
from conftest import ROOT

from mlops_ci.errors import UsageError
from mlops_ci.monitor import http1, segments
from mlops_ci.monitor.logs import REQUEST, RESPONSE, Corrupt, Entry, read_objects
from mlops_ci.monitor.receiver import Receiver, ReceiverSettings
from mlops_ci.monitor.traffic import pair, request_frame
from mlops_ci.runtime import v2

# what KServe's agent sets on every event of the churn predictor in namespace "models"
ATTRS = {"source": "http://localhost:9081/", "inferenceservicename": "churn", "namespace": "models",
         "component": "predictor", "endpoint": "default"}
T0 = datetime(2026, 12, 1, 12, 0, 3, 123456, tzinfo=UTC)


def v2_request(i: int) -> bytes:
    return v2.request_json(pd.DataFrame({"tenure": [float(i)], "plan": [["basic", "pro"][i % 2]]})).encode()


def v2_response(score: float) -> bytes:
    return json.dumps({"model_name": "churn", "outputs": [
        {"name": "output-1", "shape": [1, 2], "datatype": "FP64", "data": [1 - score, score]}]}).encode()


def event(ident: str, kind: str = "request", data: bytes | dict | None = None, **attrs: object) -> CloudEvent:
    body = data if data is not None else (v2_request(1) if kind == "request" else v2_response(0.25))
    return CloudEvent({"type": REQUEST if kind == "request" else RESPONSE, "id": ident, **ATTRS,
                       "datacontenttype": "application/json", **attrs}, body)


def post(url: str, ev: CloudEvent, *, structured: bool = False, session=requests) -> requests.Response:
    message = (to_structured_event if structured else to_binary_event)(ev)
    return session.post(url, data=message.body, headers=message.headers, timeout=30)


def stored(root: Path) -> list[Entry]:
    """Every entry under root, read as monitoring reads it; no object may be corrupt."""
    out = []
    for _, got in read_objects(str(root)):
        assert not isinstance(got, Corrupt), got
        out += got
    return out


@pytest.fixture
def receive(tmp_path):
    """Start receivers writing to tmp_path/logs; all are stopped at the end."""
    started: list[Receiver] = []

    def start(**settings) -> Receiver:
        receiver = Receiver(ReceiverSettings(root=tmp_path / "logs", **settings)).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop(timeout=5)


# ---------------------------------------------------------------------------------------------
# round trips


def test_binary_events_round_trip_into_kserve_s_layout(receive, tmp_path):
    """KServe's default: binary mode. Request and response land where KServe's storage mode puts
    them, with every field, and pair into a row of features and its prediction."""
    receiver = receive()
    ident = "5f2c 7%e"  # percent-encoded by the sender (ce-id: 5f2c%207%25e), decoded by the receiver
    assert post(receiver.url, event(ident, time=T0)).status_code == 200
    assert post(receiver.url, event(ident, "response", time=T0)).status_code == 200

    folder = tmp_path / "logs" / "models" / "churn" / "predictor"
    assert sorted(p.name for p in folder.iterdir()) == [f"{ident}-request.json", f"{ident}-response.json"]
    request, response = sorted(stored(tmp_path / "logs"), key=lambda e: e.kind)
    assert request == Entry(id=ident, kind="request", body=v2_request(1), time=T0, inference_service="churn",
                            component="predictor", endpoint="default", content_type="application/json")
    assert response.body == v2_response(0.25) and response.kind == "response"
    assert request_frame(request.body).to_dict("records") == [{"tenure": 1.0, "plan": "pro"}]
    traffic = pair(read_objects(str(tmp_path / "logs")))
    assert traffic.frame[["tenure", "prediction", "_request_id"]].to_dict("records") == \
        [{"tenure": 1.0, "prediction": 0.25, "_request_id": ident}]
    assert json.loads((folder / f"{ident}-request.json").read_text())["namespace"] == "models"


@pytest.mark.parametrize("data", ["bytes", "json"], ids=["data_base64", "data"])
def test_structured_events_round_trip(receive, tmp_path, data):
    """Structured mode: the payload as data_base64 (bytes) or as a JSON value (data)."""
    receiver = receive()
    body = v2_request(2) if data == "bytes" else json.loads(v2_request(2))
    assert post(receiver.url, event("s-1", data=body, time=T0), structured=True).status_code == 200
    (entry,) = stored(tmp_path / "logs")
    assert (entry.id, entry.kind, entry.time, entry.inference_service, entry.component) == \
        ("s-1", "request", T0, "churn", "predictor")
    if data == "bytes":
        assert entry.body == v2_request(2)
    assert request_frame(entry.body).to_dict("records") == [{"tenure": 2.0, "plan": "basic"}]


def test_parquet_segments_and_a_default_namespace(receive, tmp_path):
    receiver = receive(marshaller="parquet", namespace_default="serving")
    ev = CloudEvent({"type": REQUEST, "source": "/", "id": "p-1", "inferenceservicename": "churn",
                     "component": "predictor"}, v2_request(3))
    assert post(receiver.url, ev).status_code == 200
    assert (tmp_path / "logs" / "serving" / "churn" / "predictor" / "p-1-request.parquet").is_file()
    (entry,) = stored(tmp_path / "logs")
    assert entry.body == v2_request(3) and entry.id == "p-1"


# ---------------------------------------------------------------------------------------------
# refusals

GOOD = {"ce-id": "r-1", "ce-type": REQUEST, "ce-specversion": "1.0", "ce-source": "/",
        "ce-namespace": "models", "ce-inferenceservicename": "churn", "ce-component": "predictor"}
SECRET = b'{"inputs":[{"name":"email","shape":[1],"datatype":"BYTES","data":["jane@example.com"]}]}'


def _structured(**doc: object) -> tuple[dict, bytes]:
    return {"Content-Type": "application/cloudevents+json"}, json.dumps(
        {"id": "r-2", "type": REQUEST, "specversion": "1.0", "source": "/", **doc}).encode()


MALFORMED = [
    ({k: v for k, v in GOOD.items() if k != "ce-id"}, SECRET, "missing-attribute"),
    ({k: v for k, v in GOOD.items() if k != "ce-type"}, SECRET, "missing-attribute"),
    ({k: v for k, v in GOOD.items() if k != "ce-specversion"}, SECRET, "missing-attribute"),
    ({**GOOD, "ce-specversion": "0.3"}, SECRET, "bad-specversion"),
    ({**GOOD, "ce-type": "com.example.other"}, SECRET, "unknown-type"),
    ({**GOOD, "ce-id": "../../etc/passwd"}, SECRET, "bad-id"),
    ({**GOOD, "ce-id": ".hidden"}, SECRET, "bad-id"),
    ({**GOOD, "ce-namespace": ".."}, SECRET, "bad-name"),
    ({**GOOD, "ce-inferenceservicename": "Churn/../x"}, SECRET, "bad-name"),
    ({**GOOD, "ce-time": "yesterday"}, SECRET, "bad-attribute"),
    ({"Content-Type": "application/cloudevents+json"}, b"[" + SECRET + b"]", "bad-json"),
    ({"Content-Type": "application/cloudevents+json"}, SECRET[:-3], "bad-json"),
    (*_structured(data_base64="not base64!"), "bad-base64"),
    (*_structured(data_base64="", data={"a": 1}), "bad-data"),
    (*_structured(namespace=7), "bad-attribute"),
    (*_structured(type=None), "missing-attribute"),
    ({"Content-Type": "application/cloudevents-batch+json"}, b"[]", "unsupported"),
]


def test_malformed_events_are_refused_counted_and_logged_without_the_body(receive, tmp_path, caplog):
    receiver = receive()
    caplog.set_level("WARNING", logger="mlops_ci.monitor.receiver")
    with requests.Session() as session:
        for headers, body, reason in MALFORMED:
            got = session.post(receiver.url, data=body, headers=headers, timeout=10)
            assert (got.status_code, got.json()["error"]) == (400, reason), (headers, got.text)
    health = requests.get(receiver.url + "/healthz", timeout=10).json()
    assert health["refused"] == dict(Counter(reason for *_, reason in MALFORMED))
    assert health["accepted"] == 0 and stored(tmp_path / "logs") == []
    lines = [r for r in caplog.records if r.name == "mlops_ci.monitor.receiver"]
    assert len(lines) == len(MALFORMED), "one line per refusal"
    assert all(r.getMessage().startswith("refused 400 ") for r in lines)
    assert "jane@example.com" not in caplog.text and "base64!" not in caplog.text


def _headers_only(url: str, headers: dict[str, str]) -> tuple[int, str, str]:
    """POST the headers and wait for the answer before sending any body: refused on the headers alone."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("POST", "/")
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        got = conn.getresponse()
        return got.status, json.loads(got.read())["error"], got.getheader("Connection")
    finally:
        conn.close()


def test_oversized_unsized_and_misdirected_requests(receive):
    receiver = receive(max_event_bytes=1000)
    assert _headers_only(receiver.url, {**GOOD, "Content-Length": "1001"}) == (413, "too-large", "close")
    assert _headers_only(receiver.url, {**GOOD, "Transfer-Encoding": "chunked"}) == \
        (411, "length-required", "close")
    assert requests.post(receiver.url + "/other", data=b"{}", headers=GOOD, timeout=10).status_code == 404
    assert requests.get(receiver.url + "/metrics", timeout=10).status_code == 404
    assert post(receiver.url, event("fits", data=b"x" * 1000)).status_code == 200
    health = requests.get(receiver.url + "/healthz", timeout=10).json()
    assert health["refused"] == {"too-large": 1, "length-required": 1, "not-found": 2}
    assert (health["status"], health["accepted"], health["segments_written"]) == ("ok", 1, 1)


def test_settings_and_a_taken_port_are_refused_with_the_fix(tmp_path):
    with pytest.raises(UsageError, match="marshaller 'csv'"):
        ReceiverSettings(root=tmp_path, marshaller="csv")
    with pytest.raises(UsageError, match="store path"):
        ReceiverSettings(root=tmp_path, store_path="../up")
    first = Receiver(ReceiverSettings(root=tmp_path))
    try:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
            Receiver(ReceiverSettings(root=tmp_path), port=port)
    finally:
        first.stop(timeout=1)


# ---------------------------------------------------------------------------------------------
# acknowledged only once durable


def test_one_sender_is_acknowledged_after_the_interval_once_the_object_exists(receive, tmp_path):
    receiver = receive(flush_interval_s=0.3)
    started = time.monotonic()
    assert post(receiver.url, event("one")).status_code == 200
    assert time.monotonic() - started >= 0.25, "acknowledged before its batch was flushed"
    assert (tmp_path / "logs" / "models" / "churn" / "predictor" / "one-request.json").is_file()


def test_a_full_batch_is_written_without_waiting_for_the_interval(receive, tmp_path):
    receiver = receive(flush_interval_s=30, batch_events=4)
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda i: post(receiver.url, event(f"b-{i}")).status_code, range(4)))
    assert codes == [200] * 4 and time.monotonic() - started < 10
    (_, entries), = read_objects(str(tmp_path / "logs"))
    assert sorted(e.id for e in entries) == ["b-0", "b-1", "b-2", "b-3"]


def test_batches_are_grouped_per_namespace_service_and_component(receive, tmp_path):
    receiver = receive(flush_interval_s=0.5, batch_events=100)
    names = [("models", "churn", "predictor"), ("models", "churn", "transformer"), ("other", "fraud", "predictor")]
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda i: post(receiver.url, event(
            f"g-{i}", namespace=names[i % 3][0], inferenceservicename=names[i % 3][1],
            component=names[i % 3][2])).status_code, range(6)))
    assert codes == [200] * 6
    objects: dict[str, list[str]] = {}
    for path, got in read_objects(str(tmp_path / "logs")):
        objects.setdefault(Path(path).relative_to(tmp_path / "logs").parent.as_posix(), []).extend(e.id for e in got)
    assert {k: sorted(v) for k, v in objects.items()} == {"models/churn/predictor": ["g-0", "g-3"], "models/churn/transformer": ["g-1", "g-4"],
                       "other/fraud/predictor": ["g-2", "g-5"]}


def test_a_reused_id_never_overwrites_an_acknowledged_object(receive, tmp_path):
    """KServe names events after the client's Ce-Id header; a client that repeats it must not make
    the receiver replace an object it acknowledged."""
    receiver = receive(flush_interval_s=0)
    for i in range(3):
        assert post(receiver.url, event("same", data=v2_request(i))).status_code == 200
    assert sorted(request_frame(e.body)["tenure"][0] for e in stored(tmp_path / "logs")) == [0.0, 1.0, 2.0]
    folder = tmp_path / "logs" / "models" / "churn" / "predictor"
    assert (folder / "same-request.json").is_file() and len(list(folder.glob("dup-*/same-request.json"))) == 2


def test_a_failed_write_is_answered_503_never_200(receive, tmp_path, monkeypatch):
    receiver = receive()
    (tmp_path / "logs" / "models").write_text("a file where the namespace's folder should be")
    got = post(receiver.url, event("lost"))
    assert (got.status_code, got.json()["error"]) == (503, "storage")
    assert "NotADirectoryError" in got.json()["message"] or "FileExistsError" in got.json()["message"]

    def bug(*args, **kwargs):
        raise ValueError("an encoder bug")

    (tmp_path / "logs" / "models").unlink()
    monkeypatch.setattr(segments, "write_batch", bug)
    assert post(receiver.url, event("lost-too")).json()["message"] == \
        "the segment could not be written (ValueError: an encoder bug)"
    monkeypatch.undo()
    assert post(receiver.url, event("kept")).status_code == 200, "the flusher lives on"
    health = requests.get(receiver.url + "/healthz", timeout=10).json()
    assert (health["accepted"], health["refused"], health["segments_written"]) == (1, {"storage": 2}, 1)
    assert [e.id for e in stored(tmp_path / "logs")] == ["kept"]


def test_the_buffer_stays_bounded_while_senders_outpace_the_disk(receive, tmp_path, monkeypatch):
    """Many senders, a slow disk: the buffer holds at most batch_bytes plus one event, senders wait
    for room, and every event is stored."""
    write = segments.SegmentWriter.write

    def slow_write(self, seg):
        time.sleep(0.03)
        return write(self, seg)

    monkeypatch.setattr(segments.SegmentWriter, "write", slow_write)
    batch_bytes, size = 4000, 900
    receiver = receive(batch_bytes=batch_bytes, batch_events=1000, flush_interval_s=0.01, max_readers=4)
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda i: post(receiver.url, event(f"m-{i}", data=b"x" * size)).status_code,
                              range(96)))
    assert codes == [200] * 96
    health = requests.get(receiver.url + "/healthz", timeout=10).json()
    assert batch_bytes <= health["peak_buffered_bytes"] < batch_bytes + size, "the buffer never filled, or overflowed"
    assert health["buffered_bytes"] == 0 and health["segments_written"] < 96
    assert len(stored(tmp_path / "logs")) == 96


def test_senders_that_wait_for_their_answer_wait_out_the_interval_once(receive, tmp_path):
    """Group commit: four senders, each waiting for its answer before its next event (as KServe's
    agent's workers do). Their first batch waits for the interval; every later one is written as soon
    as it holds as many events as the one before (all four are back: waiting longer gains nothing). A
    batch smaller than the last, here a lone event, waits for the interval again."""
    receiver = receive(flush_interval_s=1.0, batch_events=1000)

    def sender(n: int) -> list[int]:
        with requests.Session() as session:
            return [post(receiver.url, event(f"c{n}-{i}"), session=session).status_code for i in range(5)]

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        codes = [code for got in pool.map(sender, range(4)) for code in got]
    took = time.monotonic() - started
    assert codes == [200] * 20
    assert 0.9 <= took < 3, f"{took:.2f} s: five rounds waiting for the interval would take 5 s"
    assert sorted(len(got) for _, got in read_objects(str(tmp_path / "logs"))) == [4] * 5
    started = time.monotonic()
    assert post(receiver.url, event("alone")).status_code == 200
    assert time.monotonic() - started >= 0.9, "a batch smaller than the last one waits for the interval"


def test_an_idle_connection_is_closed_but_not_one_waiting_for_its_answer(receive, monkeypatch):
    monkeypatch.setattr(http1, "IDLE_S", 0.3)
    receiver = receive(flush_interval_s=1.0)
    host, port = receiver.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as idle:
        started = time.monotonic()
        assert idle.recv(1) == b"", "closed by the receiver"
        assert 0.25 <= time.monotonic() - started < 5
    started = time.monotonic()
    assert post(receiver.url, event("slow")).status_code == 200
    assert time.monotonic() - started >= 0.9, "its segment waited for the interval, longer than IDLE_S"


def _raw(url: str, data: bytes, *, half_close: bool = True) -> bytes:
    """Everything the receiver answers to ``data`` sent on one connection, until it closes it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(data)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := conn.recv(65536):
            out += chunk
    return out


def _binary(ident: str, version: str = "HTTP/1.1", extra: str = "") -> bytes:
    body = v2_request(1)
    head = (f"POST / {version}\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in {**GOOD, "ce-id": ident}.items()) + extra + "\r\n")
    return head.encode() + body


def test_http_a_sender_may_rely_on(receive, tmp_path):
    """Expect: 100-continue; requests pipelined on one connection; HTTP/1.0 closes after its answer; a
    malformed head and an unknown method are refused and counted."""
    receiver = receive(flush_interval_s=0)
    got = _raw(receiver.url, _binary("e-1", extra="Expect: 100-continue\r\n"))
    assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    got = _raw(receiver.url, _binary("p-1") + _binary("p-2"))
    assert got.count(b"HTTP/1.1 200 OK\r\n") == 2 and b"Connection: close" not in got
    got = _raw(receiver.url, _binary("h-1", version="HTTP/1.0"), half_close=False)
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close\r\n" in got
    assert _raw(receiver.url, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert _raw(receiver.url, b"PUT / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 501 ")
    folded = _binary("f-1").replace(b"Host: x\r\n", b"Host: x\r\n folded\r\n")
    assert _raw(receiver.url, folded).startswith(b"HTTP/1.1 400 ")
    assert sorted(e.id for e in stored(tmp_path / "logs")) == ["e-1", "h-1", "p-1", "p-2"]
    health = requests.get(receiver.url + "/healthz", timeout=10).json()
    assert (health["accepted"], health["refused"]) == (4, {"bad-request": 2, "not-implemented": 1})


# ---------------------------------------------------------------------------------------------
# the process: SIGTERM flushes, SIGKILL loses nothing acknowledged


def start_process(root: Path, log: Path, *args: str) -> tuple[subprocess.Popen, str]:
    with log.open("w") as stderr:
        # through the CLI, as the manifest runs it
        proc = subprocess.Popen([sys.executable, "-m", "mlops_ci", "monitor", "receive", "--root", str(root),
                                 "--port", "0", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = proc.stdout.readline()
    match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", line)
    if match is None:
        proc.kill()
        pytest.fail(f"the receiver did not start: {line!r}\n{log.read_text()[-2000:]}")
    return proc, match[1]


def test_sigterm_writes_and_acknowledges_what_is_buffered(tmp_path):
    root = tmp_path / "logs"
    proc, url = start_process(root, tmp_path / "stderr.log", "--flush-interval", "60", "--batch-events", "1000")
    try:
        with ThreadPoolExecutor(5) as pool:
            answers = [pool.submit(post, url, event(f"t-{i}")) for i in range(5)]
            deadline = time.monotonic() + 10
            while requests.get(url + "/healthz", timeout=5).json()["buffered_events"] < 5:
                assert time.monotonic() < deadline, "the events never reached the buffer"
                time.sleep(0.02)
            assert stored(root) == [], "nothing is written before the interval or a full batch"
            proc.send_signal(signal.SIGTERM)
            assert [a.result(timeout=10).status_code for a in answers] == [200] * 5
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    assert sorted(e.id for e in stored(root)) == [f"t-{i}" for i in range(5)]
    assert "SIGTERM: writing what is buffered" in (tmp_path / "stderr.log").read_text()


def test_sigkill_mid_stream_loses_no_acknowledged_event(tmp_path):
    """Six senders (binary and structured, requests and responses) against a receiver killed with
    SIGKILL: every event that got 200 is read back; nothing half-written is read."""
    root = tmp_path / "logs"
    proc, url = start_process(root, tmp_path / "stderr.log", "--flush-interval", "0.02", "--batch-events", "8")
    acked: list[tuple[str, str]] = []
    stop = threading.Event()

    def sender(n: int) -> None:
        with requests.Session() as session:
            for i in range(10_000):
                if stop.is_set():
                    return
                ident, kind = f"k{n}-{i // 2}", ("request", "response")[i % 2]
                try:
                    got = post(url, event(ident, kind, data=v2_request(i) if kind == "request" else None),
                               structured=n % 2 == 1, session=session)
                except requests.RequestException:
                    return  # killed mid-request: no answer, no promise
                if got.status_code == 200:
                    acked.append((ident, kind))

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 15
        while len(acked) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop.set()
        proc.kill()
        for t in threads:
            t.join(timeout=30)
    assert len(acked) >= 200, "the senders were too slow"
    # a temporary file left by a write cut short is never read as an object
    folder = root / "models" / "churn" / "predictor"
    (folder / ".k0-0-request.json-abc123.tmp").write_bytes(b'[{"id": "half')
    entries = stored(root)
    assert set(acked) <= {(e.id, e.kind) for e in entries}, "an acknowledged event was lost"
    assert all(request_frame(e.body)["tenure"].notna().all() for e in entries if e.kind == "request")
    traffic = pair(read_objects(str(root)))
    assert not traffic.corrupt and traffic.undecodable == 0
    assert traffic.requests >= sum(kind == "request" for _, kind in acked)

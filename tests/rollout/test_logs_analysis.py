"""A rollout step judged from KServe's payload logs (mlops_ci.rollout.logs): a primary and a canary
answer a day of requests, written in KServe's storage layout with the endpoint each record names (as
the agent logs it), read back and paired. The same model passes, a canary whose scores moved fails on
PSI/JS, a worse canary fails on accuracy once labels are joined, and a canary with too little traffic
is inconclusive, never a pass. Records without an endpoint are the primary's; the CloudEvent receiver
keeps ``ce-endpoint``."""

from __future__ import annotations

import pandas as pd
import pytest
import requests
from conftest import tiny_frame
from monitor_support import DAY, UNTIL, day_of_traffic

from mlops_ci.errors import UsageError
from mlops_ci.monitor.labels import join
from mlops_ci.monitor.logs import REQUEST, RESPONSE, Corrupt, Entry, read_objects
from mlops_ci.monitor.objects import read_records
from mlops_ci.monitor.receiver import Receiver, ReceiverSettings
from mlops_ci.monitor.store import write_batch
from mlops_ci.monitor.traffic import ENDPOINT, ID, PREDICTION, pair
from mlops_ci.rollout.logs import LogThresholds, analyse_logs, split
from mlops_ci.rollout.verdict import FAIL, INCONCLUSIVE, PASS, Window, combine

FEATURES = ["x1", "x2", "color"]
TRUE = {"w": [1.5, -1.0], "b": 0.0}  # the model tiny_frame's labels are drawn from
SHIFTED = {"w": [1.5, -1.0], "b": 1.5}  # the same features, every score pushed up
WORSE = {"w": [0.2, -1.0], "b": 0.0}  # x1 (the strongest feature) nearly ignored
DAY0 = UNTIL - DAY
WINDOW = Window(DAY0, UNTIL)
PRIMARY_ROWS, PRIMARY_SEED, CANARY_SEED = 400, 31, 32


MODELS = {"same": TRUE, "shifted": SHIFTED, "worse": WORSE}


def serve(root, *, canary: int = 400, canary_weights: dict = TRUE, marshaller: str = "json",
          primary_endpoint: str = "default"):
    """A day of traffic: the primary's requests answered by the true model, the canary's by
    ``canary_weights``; then read back and paired as a step's analysis reads them."""
    day_of_traffic(root, DAY0, tiny_frame(PRIMARY_ROWS, seed=PRIMARY_SEED)[FEATURES], TRUE, marshaller=marshaller,
                   endpoint=primary_endpoint)
    if canary:
        day_of_traffic(root, DAY0, tiny_frame(canary, seed=CANARY_SEED)[FEATURES], canary_weights,
                       marshaller=marshaller, endpoint="canary")
    traffic = pair(read_objects(str(root)))
    assert not traffic.corrupt and not traffic.unanswered and not traffic.undecodable
    return traffic


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """:func:`serve` once per setting in this module (writing and pairing is most of a test's time);
    the tests only read what it returns."""
    done = {}

    def get(model: str = "same", *, canary: int = 400, marshaller: str = "json", primary_endpoint: str = "default"):
        key = (model, canary, marshaller, primary_endpoint)
        if key not in done:
            done[key] = serve(tmp_path_factory.mktemp("logs"), canary_weights=MODELS[model], canary=canary,
                              marshaller=marshaller, primary_endpoint=primary_endpoint)
        return done[key]

    return get


def labels(primary_endpoint: str = "default", canary: int = 400) -> pd.DataFrame:
    """The ground truth of every request served (ids as day_of_traffic names them)."""
    parts = []
    for endpoint, rows, seed in ((primary_endpoint, PRIMARY_ROWS, PRIMARY_SEED), ("canary", canary, CANARY_SEED)):
        prefix = f"{endpoint}-" if endpoint else ""
        truth = tiny_frame(rows, seed=seed)["label"]
        parts.append(pd.DataFrame({"id": [f"{prefix}{DAY0:%m%d}-{i:04d}" for i in range(rows)], "label": truth}))
    return pd.concat(parts, ignore_index=True)


def by_name(findings):
    return {f.name: f for f in findings}


# -- the prediction distribution ---------------------------------------------------------------------

def test_a_canary_of_the_same_model_passes(served):
    traffic = served()
    assert traffic.frame[ENDPOINT].value_counts().to_dict() == {"default": 400, "canary": 400}
    findings = analyse_logs(traffic, window=WINDOW, min_rows=100)
    assert [f.name for f in findings] == ["prediction"]  # no labels: no metric finding
    found = findings[0]
    assert found.status == PASS and found.source == "logs", found.message
    assert found.message.startswith("predictions of the canary (400 requests) against the primary's (400): PSI ")
    assert "< 0.5" in found.message and "< 0.3" in found.message  # the defaults: PSI 0.5, JS 0.3
    assert combine(findings).status == PASS


@pytest.mark.parametrize("marshaller", ["json", "parquet"])
def test_a_canary_whose_scores_moved_fails_naming_psi_and_js(served, marshaller):
    traffic = served("shifted", marshaller=marshaller)
    found = by_name(analyse_logs(traffic.frame, window=WINDOW, min_rows=100))["prediction"]
    assert found.status == FAIL, found.message
    assert "PSI" in found.message and "JS" in found.message and "≥ 0.5" in found.message
    assert found.canary is not None and found.threshold in (0.5, 0.3) and found.canary >= found.threshold
    # with the levels turned up past what was measured, the same traffic passes
    loose = LogThresholds(psi=50.0, js=0.99)
    assert analyse_logs(traffic, window=WINDOW, min_rows=100, thresholds=loose)[0].status == PASS


def test_a_canary_with_five_requests_is_inconclusive_naming_the_counts(served):
    traffic = served("shifted", canary=5)
    (found,) = analyse_logs(traffic, window=WINDOW, min_rows=100)
    assert found.status == INCONCLUSIVE
    assert found.message == ("too little traffic to compare predictions: the canary 5 rows (5 requests), the "
                             "primary 400 (400); at least 100 each")
    assert combine([found]).status == INCONCLUSIVE


def test_records_without_an_endpoint_are_the_primary_s(served):
    traffic = served(primary_endpoint="")  # the primary's pods logged no endpoint
    assert traffic.frame[ENDPOINT].value_counts().to_dict() == {"default": 400, "canary": 400}
    primary, canary = split(traffic.frame, WINDOW)
    assert (primary.count, canary.count) == (400, 400)
    assert analyse_logs(traffic, window=WINDOW, min_rows=100)[0].status == PASS


def test_logs_without_any_endpoint_have_no_canary_and_keep_their_frame(tmp_path):
    day_of_traffic(tmp_path, DAY0, tiny_frame(50, seed=3)[FEATURES], TRUE)
    traffic = pair(read_objects(str(tmp_path)))
    assert ENDPOINT not in traffic.frame  # the frame monitoring has always read
    (found,) = analyse_logs(traffic, window=WINDOW, min_rows=10)
    assert found.status == INCONCLUSIVE and "the canary 0 rows (0 requests), the primary 50 (50)" in found.message


def test_only_the_window_s_rows_are_judged(served):
    traffic = served("shifted")
    before = Window(DAY0 - DAY, DAY0)  # the day before: nothing served
    (found,) = analyse_logs(traffic, window=before, min_rows=1)
    assert found.status == INCONCLUSIVE and "the canary 0 rows" in found.message
    # the first hour: 120 requests of each side (one every 30 s)
    primary, canary = split(traffic.frame, Window(DAY0, DAY0 + DAY / 24))
    assert (primary.count, canary.count) == (120, 120)


# -- the live metric, where labels are joined ----------------------------------------------------------

def test_a_worse_canary_fails_on_accuracy_once_labels_are_joined(served):
    traffic = served("worse")
    frame = join(traffic.frame, labels(), key="id", on="request", label="label").frame
    findings = by_name(analyse_logs(frame, window=WINDOW, min_rows=100, thresholds=LogThresholds(psi=None, js=None)))
    assert findings["prediction"].status == PASS  # drift levels off: only the metric decides
    found = findings["accuracy"]
    assert found.status == FAIL, found.message
    assert found.canary < found.primary - 0.02 and found.threshold == 0.02
    assert found.message.startswith(f"accuracy of the canary {found.canary:.4f} (400 labelled rows) against the "
                                    f"primary's {found.primary:.4f} (400): ")
    assert "worse, over the 0.02 allowed" in found.message
    assert combine(findings.values()).status == FAIL


def test_the_same_model_passes_on_its_metric_and_few_labels_are_inconclusive(served):
    traffic = served()
    truth = labels()
    frame = join(traffic.frame, truth, key="id", on="request", label="label").frame
    found = by_name(analyse_logs(frame, window=WINDOW, min_rows=100))
    assert found["prediction"].status == PASS and found["accuracy"].status == PASS, found["accuracy"].message
    assert found["accuracy"].message.endswith("within the 0.02 allowed")
    # the canary's labels not in yet, but for ten
    some = truth[~truth["id"].str.startswith("canary-") | truth["id"].isin([f"canary-{DAY0:%m%d}-{i:04d}"
                                                                          for i in range(10)])]
    frame = join(traffic.frame, some, key="id", on="request", label="label").frame
    late = by_name(analyse_logs(frame, window=WINDOW, min_rows=100))["accuracy"]
    assert late.status == INCONCLUSIVE
    assert late.message == ("too few labels yet to compare accuracy: the canary 10 labelled rows (10 requests), "
                            "the primary 400 (400); at least 100 each")
    # no label at all for the window: no metric finding (labels not configured, or not in yet)
    none = join(traffic.frame, truth.iloc[0:0], key="id", on="request", label="label").frame
    assert [f.name for f in analyse_logs(none, window=WINDOW, min_rows=100)] == ["prediction"]


def test_a_metric_the_task_does_not_have_is_refused():
    with pytest.raises(UsageError, match="rmse"):
        LogThresholds(metric="rmse")
    assert LogThresholds(metric="rmse", task="regression").metric == "rmse"


# -- the readers keep the endpoint ---------------------------------------------------------------------

@pytest.mark.parametrize("marshaller", ["json", "parquet"])
def test_the_stream_reader_keeps_endpoints_only_when_logged(tmp_path, marshaller):
    def entries(endpoints):
        return [Entry(id=f"r{i}", kind="request", body=b"{}", time=DAY0, inference_service="tiny", endpoint=e)
                for i, e in enumerate(endpoints)]

    with_endpoints = write_batch(tmp_path / "a", entries(["canary", "", "default"]), marshaller=marshaller)
    without = write_batch(tmp_path / "b", entries(["", ""]), marshaller=marshaller)
    got = read_records(with_endpoints.read_bytes(), marshaller, DAY0)
    assert got.endpoints.to_pylist() == ["canary", "", "default"] and got.ids == ["r0", "r1", "r2"]
    assert read_records(without.read_bytes(), marshaller, DAY0).endpoints is None


def test_the_receiver_keeps_ce_endpoint(tmp_path):
    """KServe's agent in URL mode: binary CloudEvents with ce-endpoint: canary, stored and read back."""
    from cloudevents.core.bindings.http import to_binary_event
    from cloudevents.core.v1.event import CloudEvent

    from mlops_ci.runtime import v2

    request = v2.request_json(tiny_frame(1, seed=5)[FEATURES].astype({"x1": float, "x2": float})).encode()
    response = b'{"outputs":[{"name":"p","shape":[1],"datatype":"FP64","data":[0.75]}]}'
    receiver = Receiver(ReceiverSettings(root=tmp_path / "logs")).start()
    try:
        for kind, body in ((REQUEST, request), (RESPONSE, response)):
            event = CloudEvent({"type": kind, "id": "c-1", "source": "http://localhost:9081/", "time": DAY0,
                                "inferenceservicename": "tiny", "namespace": "models", "component": "predictor",
                                "endpoint": "canary", "datacontenttype": "application/json"}, body)
            message = to_binary_event(event)
            assert message.headers.get("ce-endpoint") == "canary"
            assert requests.post(receiver.url, data=message.body, headers=message.headers, timeout=30).ok
    finally:
        receiver.stop(timeout=5)
    objects = list(read_objects(str(tmp_path / "logs")))
    assert not any(isinstance(got, Corrupt) for _, got in objects)
    assert {e.endpoint for _, got in objects for e in got} == {"canary"}
    frame = pair(objects).frame
    assert frame[[ID, PREDICTION, ENDPOINT]].to_dict("records") == [{ID: "c-1", PREDICTION: 0.75, ENDPOINT: "canary"}]
    primary, canary = split(frame, WINDOW)
    assert (primary.count, canary.count) == (0, 1)

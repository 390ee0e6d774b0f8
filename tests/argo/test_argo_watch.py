"""The watch loop's rules, with a scripted transport and a fake clock (no server, no sleeping):
backoff while nothing changes, riding out retryable failures until the deadline, a deadline,
the end phases and the outputs. The transports themselves are tested against the local Argo
server in tests/argo/test_argo_transports.py."""

from __future__ import annotations

import pytest

from mlops_ci.backends.argo.base import TransportError, pick
from mlops_ci.backends.argo.watch import watch


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Scripted:
    """Answers ``get`` from a list: a dict (the Workflow), None (gone) or an exception."""

    name, namespace = "scripted", "ml"

    def __init__(self, answers) -> None:
        self.answers = list(answers)
        self.fields = []

    def get(self, name, fields=None):
        self.fields.append(fields)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def wf(phase, message="", outputs=None):
    status = {"phase": phase, "message": message}
    if outputs is not None:
        status["outputs"] = {"parameters": [{"name": k, "value": v} for k, v in outputs.items()]}
    return {"metadata": {"name": "w"}, "status": status}


def test_succeeded_with_outputs_and_phase_changes_reported():
    clock, seen = Clock(), []
    transport = Scripted([wf("Pending"), wf("Running"), wf("Running"), wf("Succeeded", outputs={"result": "{}"})])
    result = watch(transport, "w", deadline_s=600, on_change=lambda p, m: seen.append(p), clock=clock,
                   sleep=clock.sleep)
    assert result.succeeded and result.outputs == {"result": "{}"} and result.polls == 4
    assert seen == ["Pending", "Running", "Succeeded"]
    assert all(f and "status.phase" in f and "status.outputs" in f for f in transport.fields)


def test_interval_grows_while_nothing_changes_and_resets_on_news():
    clock = Clock()
    transport = Scripted([wf("Running")] * 6 + [wf("Running", "step 2")] + [wf("Succeeded")])
    watch(transport, "w", deadline_s=600, interval_s=2, max_interval_s=5, clock=clock, sleep=clock.sleep)
    assert clock.sleeps[:6] == [2, 3.0, 4.5, 5, 5, 5] and clock.sleeps[6] == 2


def test_dropped_connections_and_5xx_are_ridden_out():
    clock = Clock()
    drop = TransportError("connection reset", retryable=True)
    transport = Scripted([wf("Running"), drop, drop, TransportError("502", status=502, retryable=True),
                          wf("Failed", "exit code 3")])
    result = watch(transport, "w", deadline_s=600, clock=clock, sleep=clock.sleep)
    assert (result.phase, result.message, result.errors) == ("Failed", "exit code 3", 3)


def test_a_final_error_ends_the_watch():
    transport = Scripted([TransportError("403 forbidden", status=403)])
    with pytest.raises(TransportError, match="403"):
        watch(transport, "w", deadline_s=600, clock=Clock(), sleep=lambda s: None)


def test_failures_past_the_deadline_give_up_with_the_cause():
    clock = Clock()
    transport = Scripted([TransportError("connection refused", retryable=True)])
    with pytest.raises(TransportError, match="lost w after .* failed polls: connection refused"):
        watch(transport, "w", deadline_s=60, clock=clock, sleep=clock.sleep)
    assert clock.now <= 60


def test_deadline_returns_timeout_and_a_deleted_workflow_is_an_error():
    clock = Clock()
    result = watch(Scripted([wf("Running")]), "w", deadline_s=30, clock=clock, sleep=clock.sleep)
    assert result.phase == "Timeout" and clock.now == pytest.approx(30)
    with pytest.raises(TransportError, match="is gone"):
        watch(Scripted([wf("Running"), None]), "w", deadline_s=30, clock=Clock(), sleep=lambda s: None)


def test_pick_keeps_only_the_named_fields():
    doc = {"metadata": {"name": "w", "uid": "1", "labels": {"a": "b"}}, "spec": {"x": 1},
           "status": {"phase": "Running", "nodes": {}}}
    assert pick(doc, ["metadata.name", "metadata.labels", "status.phase", "status.outputs"]) == {
        "metadata": {"name": "w", "labels": {"a": "b"}}, "status": {"phase": "Running"}}

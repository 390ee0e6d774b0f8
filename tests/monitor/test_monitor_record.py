"""The MonitorRecord: what a run's windows say as a whole, and the record read back as untrusted
input."""

from __future__ import annotations

import json

import pytest

from mlops_ci.records.monitor import (
    INSUFFICIENT,
    MonitorRecord,
    MonitorRecordError,
    WindowResult,
    load_monitor_record,
    save_monitor_record,
    worst_window,
)


def window(day: int, status: str, *, failing: bool = False) -> WindowResult:
    from mlops_ci.records import Finding

    findings = [Finding(check="drift", dataset="traffic", column="x1", metric="psi", value=0.9, threshold=0.25,
                        status="fail", message="x1 moved")] if failing else []
    return WindowResult(start=f"2026-12-0{day}T00:00:00+00:00", end=f"2026-12-0{day + 1}T00:00:00+00:00",
                        rows=0 if status == INSUFFICIENT else 500, requests=500, status=status, findings=findings)


def record(*windows: WindowResult) -> MonitorRecord:
    return MonitorRecord(model="tiny", env="staging", version="3", run_id="abc", reference="stored", logs="/logs",
                         window="1d", until="2026-12-09T00:00:00+00:00",
                         status=worst_window(w.status for w in windows), windows=list(windows))


def test_a_quiet_last_window_neither_breaks_nor_continues_a_streak():
    r = record(window(1, "pass"), window(2, "fail", failing=True), window(3, "fail", failing=True),
               window(4, INSUFFICIENT))
    assert r.streak() == 2 and r.latest().start.startswith("2026-12-03") and r.status == "fail"
    assert record(window(1, "fail", failing=True), window(2, "pass")).streak() == 0
    assert record(window(1, INSUFFICIENT)).latest() is None and worst_window([]) == INSUFFICIENT
    assert worst_window(["pass", INSUFFICIENT]) == INSUFFICIENT  # thin traffic is never a pass


def test_the_record_is_read_back_as_untrusted_input(tmp_path):
    path = tmp_path / "m.json"
    save_monitor_record(record(window(1, "warn")), path)
    assert load_monitor_record(path).windows[0].status == "warn"
    data = json.loads(path.read_text())
    for broken, words in (({**data, "schema_version": 9}, "schema_version"),
                          ({**data, "model": "Not A Name"}, "invalid monitor record at model"),
                          ({**data, "extra": 1}, "invalid monitor record at extra")):
        path.write_text(json.dumps(broken))
        with pytest.raises(MonitorRecordError, match=words):
            load_monitor_record(path)
    path.write_text("{" * 100_000)
    with pytest.raises(MonitorRecordError, match="not a JSON monitor record"):
        load_monitor_record(path)

"""The `monitoring` section: each mistake refused at its line with what to write instead."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, refused_at

from mlops_ci.config import load_config

BASE = (FIXTURES / "tiny" / ".mlops-ci.yaml").read_text()


def with_monitoring(tmp_path, text: str):
    path = tmp_path / ".mlops-ci.yaml"
    path.write_text(BASE + "    monitoring:\n" + "".join(f"      {line}\n" for line in text.strip().splitlines()))
    return path


@pytest.mark.parametrize(("text", "line", "words"), [
    ("window: 1 day", "window:", "is not a duration: write a whole number above 0 and a unit"),
    ("window: 0h", "window:", "is not a duration"),
    ("windw: 1d", "windw:", "did you mean 'window'"),
    ("drift:\n  psi: {warn: 0.3, fail: 0.2}", "psi: {warn: 0.3", "warn 0.3 is above fail 0.2"),
    ("columns:\n  x1:\n    js: {warn: 0.5}", "js: {warn: 0.5}", "warn 0.5 is above fail 0.2"),
    ("out_of_range: {warn: 0.5, fail: 0.1}", "out_of_range:", "warn 0.5 is above fail 0.1"),
    ("out_of_range: {fail: 5}", "out_of_range:", "a share of the values"),
    ("retrain:\n  command: python refresh.py", "command:", "list"),
    ("retrain:\n  snooze: forever", "snooze:", "is not a duration"),
    ("min_rows: 0", "min_rows:", "greater than or equal to 1"),
])
def test_a_mistake_is_refused_at_its_line(tmp_path, text, line, words):
    refused_at(with_monitoring(tmp_path, text), line, words)


def test_the_defaults_and_what_the_checks_leave_out():
    model = load_config(FIXTURES / "tiny" / ".mlops-ci.yaml").config.models["tiny"]
    m = model.monitoring
    assert (m.window, m.windows, m.min_rows, m.retrain.after, m.retrain.snooze) == ("1d", 7, 200, 3, "7d")
    policy = m.as_checks(model.data.label)
    assert policy.rows.max_change.warn is None and policy.rows.max_change.fail is None  # volume is not graded
    assert model.data.label in policy.ignore_columns

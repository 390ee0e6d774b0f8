"""A rollout judged by the inference logs (issue 16): KServe's logger records which endpoint answered
(`endpoint: canary` on the canary's pods, which the rollout's manifests set); the canary's prediction
distribution against the primary's over the step's window decides. Through the real CLI with a real
git GitOps repository, MLflow on SQLite and payload logs written in KServe's storage layout."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import CONTRACTS, git, tiny_frame
from monitor_support import day_of_traffic
from test_rollout_cli import alias, promote, rollout, show, trailers, workspace

from mlops_ci.errors import ExitCode

PRIMARY = {"w": [1.5, -1.0], "b": 0.0}
SHIFTED = {"w": [1.5, -1.0], "b": 2.5}  # a candidate whose scores moved up
FEATURES = ["x1", "x2", "color"]


@pytest.fixture
def ws(tiny_repo, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MLOPS_CI_CRDS", str(CONTRACTS / "kserve"))
    ws = workspace(tiny_repo, tmp_path_factory.mktemp("registry"), "Serverless",
                   steps="[{canary: 20, soak: 1s}]",
                   extra="      lookback: 1h\n      analysis:\n        logs: {min_rows: 100}\n")
    config = ws.loaded.path
    config.write_text(config.read_text().replace("  tiny:\n", "  tiny:\n    monitoring: {logs: payloads}\n", 1))
    git(tiny_repo, "commit", "-qam", "payload logs")
    return ws


def traffic(ws, canary_weights, canary_rows: int = 200) -> None:
    """A step's traffic, logged just now (after the step's commit): the primary's and the canary's."""
    logs = ws.top / "payloads"
    start = datetime.now(UTC) - timedelta(seconds=2)
    every = timedelta(milliseconds=5)
    day_of_traffic(logs, start, tiny_frame(400, seed=31)[FEATURES], PRIMARY, namespace="tiny-prod", every=every)
    day_of_traffic(logs, start, tiny_frame(canary_rows, seed=32)[FEATURES], canary_weights, namespace="tiny-prod",
                   every=every, endpoint="canary")


def started(ws) -> str:
    assert promote(ws, "1") == 0
    before = show(ws)
    assert promote(ws, "2") == 0
    time.sleep(2.5)  # the step's window starts at its commit: the traffic below comes after
    return before


def test_a_canary_that_answers_like_the_primary_completes(ws, capsys):
    started(ws)
    traffic(ws, PRIMARY)
    capsys.readouterr()
    assert rollout(ws, "advance") == 0
    out = capsys.readouterr().out
    assert "tiny in prod: completed" in out and "pass" in out and "logs/prediction" in out, out
    assert alias(ws) == "2" and "predictions of the canary (200 requests)" in trailers(ws)["Analysis"]


def test_a_canary_whose_predictions_moved_is_aborted(ws, capsys):
    before = started(ws)
    traffic(ws, SHIFTED)
    capsys.readouterr()
    assert rollout(ws, "advance") == ExitCode.GATE_FAILED
    out = capsys.readouterr().out
    assert "tiny in prod: aborted: analysis fail: predictions of the canary (200 requests) against the primary's " \
           "(400): PSI" in out, out
    assert show(ws) == before and alias(ws) == "1" and trailers(ws)["Rollout-Step"] == "aborted at 1/1"


def test_too_little_canary_traffic_is_inconclusive_and_never_promotes(ws, capsys):
    started(ws)
    traffic(ws, PRIMARY, canary_rows=5)
    capsys.readouterr()
    assert rollout(ws, "advance") == 0
    out = capsys.readouterr().out
    assert "tiny in prod: wait" in out and "inconclusive" in out and "the soak goes on" in out, out
    assert alias(ws) == "1" and trailers(ws)["Rollout-Step"] == "1/1 (20%)"


def test_a_freeze_holds_the_next_step_until_it_is_lifted_and_force_goes_past_it_recorded(ws, tmp_path, capsys):
    import subprocess

    started(ws)
    traffic(ws, PRIMARY)
    clone = tmp_path / "gitops"
    subprocess.run(["git", "clone", "-q", str(ws.gitops_remote), str(clone)], check=True)
    freeze = clone / "environments" / "prod" / "FREEZE"
    freeze.write_text("release freeze for the audit (ops, #31)\n")
    git(clone, "add", "-A")
    git(clone, "-c", "user.name=ops", "-c", "user.email=ops@example.com", "commit", "-q", "-m", "freeze prod")
    git(clone, "push", "-q", "origin", "HEAD:main")
    capsys.readouterr()
    assert rollout(ws, "advance") == 0  # the analysis passes, the policy holds the step
    out = capsys.readouterr().out
    assert "tiny in prod: wait" in out and "the policy holds the next step" in out and "FREEZE" in out, out
    assert "release freeze for the audit" in out and alias(ws) == "1"
    assert rollout(ws, "advance", "--force", "--reason", "audit signed off early") == 0
    assert alias(ws) == "2" and trailers(ws)["Forced-Reason"] == "audit signed off early"
    assert "FREEZE" in trailers(ws)["Freeze-Overridden"]

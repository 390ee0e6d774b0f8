"""A rollout step waits for Argo CD and for its soak, never goes on without a conclusive analysis, and
two `advance` runs at once commit once (issue 16). Through the real CLI (in-process and as processes)
against a real git GitOps repository, MLflow on SQLite and the local Argo CD API of
tests/servers/argocd_api.py (a test fixture checked against Argo CD's swagger, not Argo CD)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from conftest import CONTRACTS, git
from servers.argocd_api import ArgoCDServer
from test_rollout_cli import cli, promote, remote, rollout, show, trailers, workspace

from mlops_ci.errors import ExitCode
from mlops_ci.serving import canary

TOKEN = "argocd-token-for-the-rollout-7f1e"


@pytest.fixture
def argocd():
    with ArgoCDServer(token=TOKEN) as srv:
        yield srv


def live_config(url: str, inconclusive: str = "hold") -> str:
    return (f"      on_inconclusive: {inconclusive}\n      argocd: {{url: '{url}', application: mlops-ci-prod}}\n")


@pytest.fixture
def ws(tiny_repo, tmp_path_factory, monkeypatch, argocd, request):
    monkeypatch.setenv("MLOPS_CI_CRDS", str(CONTRACTS / "kserve"))
    monkeypatch.setenv("ARGOCD_TOKEN", TOKEN)
    inconclusive = getattr(request, "param", "hold")
    return workspace(tiny_repo, tmp_path_factory.mktemp("registry"), "RawDeployment",
                     steps="[{canary: 10, soak: 1s}, {canary: 50, soak: 1s}]",
                     extra=live_config(argocd.url, inconclusive))


def started(ws, argocd) -> str:
    """v1 served whole, v2's first step committed; Argo CD has synced neither yet. The step's commit."""
    argocd.set_app("mlops-ci-prod", sync_status="OutOfSync", revision=None)
    assert promote(ws, "1") == 0 and promote(ws, "2") == 0
    return git(remote(ws), "rev-parse", "main")


def test_a_step_waits_until_argo_cd_reports_it_synced_and_healthy(ws, argocd, capsys):
    step = started(ws, argocd)
    before = git(remote(ws), "rev-parse", "main~1")
    capsys.readouterr()
    assert rollout(ws, "advance") == 0 and git(remote(ws), "rev-parse", "main") == step
    assert "not live yet: Argo CD application mlops-ci-prod is OutOfSync" in capsys.readouterr().out
    argocd.set_app("mlops-ci-prod", sync_status="Synced", revision=before)  # synced, but to v1's commit
    assert rollout(ws, "status") == 0
    assert "does not contain the step's commit" in capsys.readouterr().out
    argocd.set_app("mlops-ci-prod", revision=step, health_status="Degraded",
                   health_message="Deployment tiny-predictor-canary exceeded its progress deadline")
    assert rollout(ws, "advance") == 0
    assert "Degraded: Deployment tiny-predictor-canary exceeded its progress deadline" in capsys.readouterr().out
    # even --force never takes a step that is not live
    assert rollout(ws, "advance", "--force", "--reason", "hurry") == 0 and git(remote(ws), "rev-parse", "main") == step
    argocd.set_app("mlops-ci-prod", health_status="Healthy", health_message=None, operation_phase="Succeeded",
                   operation_finished_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))
    assert rollout(ws, "status") == 0
    out = capsys.readouterr().out
    assert "soaking: live for 0m0" in out or "would advance" in out or "inconclusive" in out
    assert argocd.request_count >= 5


def test_no_analysis_source_is_inconclusive_the_soak_goes_on_then_the_step_holds(ws, argocd, capsys):
    step = started(ws, argocd)
    argocd.set_app("mlops-ci-prod", sync_status="Synced", revision=step, operation_phase="Succeeded",
                   operation_finished_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))
    time.sleep(1.2)  # soaked (1s), within max_soak (2h): inconclusive, the soak goes on
    capsys.readouterr()
    assert rollout(ws, "advance") == 0 and git(remote(ws), "rev-parse", "main") == step
    out = capsys.readouterr().out
    assert "inconclusive" in out and "the soak goes on (up to 2h00m" in out
    # past max_soak (the config now says 1s) it holds: nothing committed, a person decides
    config = ws.loaded.path
    config.write_text(config.read_text().replace("max_soak: 2h", "max_soak: 1s"))
    git(ws.top, "commit", "-qam", "max_soak 1s")
    assert rollout(ws, "advance") == 0 and git(remote(ws), "rev-parse", "main") == step
    out = capsys.readouterr().out
    assert "tiny in prod: held (step 1/2: v2 takes 10% beside v1): inconclusive" in out, out
    assert "a person decides: `mlops-ci rollout advance --force --reason TEXT` or `mlops-ci rollout abort`" in out
    assert rollout(ws, "status") == 0 and "held" in capsys.readouterr().out


@pytest.mark.parametrize("ws", ["abort"], indirect=True)
def test_inconclusive_at_max_soak_aborts_when_configured(ws, argocd, capsys, tiny_repo):
    config = tiny_repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace("max_soak: 2h", "max_soak: 1s"))
    git(tiny_repo, "commit", "-qam", "max_soak 1s")
    step = started(ws, argocd)
    before = show(ws, rev="main~1")
    argocd.set_app("mlops-ci-prod", sync_status="Synced", revision=step, operation_phase="Succeeded",
                   operation_finished_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))
    time.sleep(1.2)
    capsys.readouterr()
    assert rollout(ws, "advance") == ExitCode.GATE_FAILED
    assert "aborted: analysis inconclusive" in capsys.readouterr().out
    assert show(ws) == before and trailers(ws)["Rollout-Step"] == "aborted at 1/2"


def test_two_advance_runs_at_once_commit_one_step(ws, argocd, tiny_repo):
    step = started(ws, argocd)
    argocd.set_app("mlops-ci-prod", sync_status="Synced", revision=step, operation_phase="Succeeded")
    argv = [sys.executable, "-m", "mlops_ci", "rollout", "advance", "--model", "tiny", "--env", "prod", "--force",
            "--reason", "release train"]
    runs = [subprocess.Popen(argv, cwd=tiny_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outs = [r.communicate(timeout=120) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outs
    assert git(remote(ws), "rev-list", "--count", f"{step}..main") == "1", outs  # one commit, not two
    assert canary.state(show(ws).encode()).step == 2  # step 2, not step 3 (the full promotion)
    said = " ".join(o for o, _ in outs)
    assert "advanced to step 2/2" in said
    assert cli(ws, "rollout", "status", "--model", "tiny", "--env", "prod") == 0


def test_prometheus_down_never_promotes(ws, argocd, tiny_repo, capsys):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tiny_repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace(
        "      on_inconclusive: hold\n",
        f"      on_inconclusive: hold\n      analysis:\n        prometheus: {{url: 'http://127.0.0.1:{port}'}}\n"))
    git(tiny_repo, "commit", "-qam", "prometheus")
    step = started(ws, argocd)
    argocd.set_app("mlops-ci-prod", sync_status="Synced", revision=step, operation_phase="Succeeded",
                   operation_finished_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))
    time.sleep(1.2)
    capsys.readouterr()
    assert rollout(ws, "advance") == 0 and git(remote(ws), "rev-parse", "main") == step
    out = capsys.readouterr().out
    assert "tiny in prod: wait" in out and "inconclusive" in out and "prometheus/" in out, out
    assert "the soak goes on" in out


def test_argo_cd_not_answering_is_a_wait_and_a_refused_token_an_error(ws, argocd, monkeypatch, capsys):
    step = started(ws, argocd)
    argocd.set_app("mlops-ci-prod", sync_status="Synced", revision=step)
    argocd.fail_next(503)
    capsys.readouterr()
    assert rollout(ws, "advance") == 0 and git(remote(ws), "rev-parse", "main") == step
    assert "not live yet: Argo CD did not answer" in capsys.readouterr().out
    monkeypatch.setenv("ARGOCD_TOKEN", "a-wrong-token-9c1d")
    assert rollout(ws, "advance") == ExitCode.BACKEND
    err = capsys.readouterr().err
    assert "ARGOCD_TOKEN" in err and "a-wrong-token-9c1d" not in err

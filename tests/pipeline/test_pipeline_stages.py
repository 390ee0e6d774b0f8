"""The pipeline is an ordered list of stages: a stage added in the test (one entry in the list and
its renderer) runs in `mlops-ci run`, its result is kept under its name, decides the verdict with
the others, is shown in the report, and is forgotten when what it needs is produced again."""

from __future__ import annotations

import json

import pytest

from mlops_ci.cli.main import main
from mlops_ci.errors import ExitCode
from mlops_ci.pipeline import STAGES, Stage, stages
from mlops_ci.records import STAGE_NAMES, ChecksRecord, Finding
from mlops_ci.render import report

pytestmark = pytest.mark.slow


def test_the_stages_are_the_records_stages_in_order():
    assert [s.name for s in STAGES] == list(STAGE_NAMES)
    assert stages.dependents("train") == ["evaluate", "serve", "register", "deployment"]
    assert stages.dependents("evaluate") == ["serve", "register", "deployment"]
    assert stages.dependents("serve") == ["register", "deployment"] and stages.dependents("deployment") == []


def smoke(step) -> ChecksRecord:
    """A smoke test of the trained model: it reads the training's result and reports a failure."""
    training = step.entry.training
    return ChecksRecord(status="fail", findings=[Finding(check="data", dataset="model", status="fail",
                                                         message=f"smoke test of {training.backend} model failed")])


def test_a_new_stage_runs_decides_the_verdict_and_is_reported(champion_repo, monkeypatch, capsys):
    config = str(champion_repo / ".mlops-ci.yaml")
    monkeypatch.setattr(stages, "STAGES", [*STAGES[:2], Stage("smoke", smoke, needs=("train",)), *STAGES[2:]])
    monkeypatch.setitem(report.SECTIONS, "smoke", lambda m, links: ["#### Smoke test",
                                                                      m.result("smoke").findings[0].message])
    assert main(["run", "--config", config, "--quiet"]) == ExitCode.GATE_FAILED
    capsys.readouterr()
    record = json.loads((champion_repo / ".mlops-ci" / "record.json").read_text())
    results = record["models"]["tiny"]["results"]
    assert list(results)[:3] == ["check", "train", "smoke"] and results["smoke"]["status"] == "fail"
    text = (champion_repo / ".mlops-ci" / "report.md").read_text()
    assert "## ❌ mlops-ci: fail" in text and "#### Smoke test\nsmoke test of torchrun model failed" in text
    assert text.index("#### Smoke test") > text.index("#### Training")

    def exploding(step):
        raise RuntimeError("the smoke test could not start")

    monkeypatch.setattr(stages, "STAGES", [*STAGES[:2], Stage("smoke", exploding, needs=("train",)), *STAGES[2:]])
    monkeypatch.chdir(champion_repo / "data")  # a bug's traceback goes beside the config, found upwards
    assert main(["run", "--config", config, "--quiet"]) == ExitCode.INTERNAL
    failed = json.loads((champion_repo / ".mlops-ci" / "record.json").read_text())
    assert failed["failure"]["stage"] == "smoke" and "could not start" in failed["failure"]["message"]
    assert "the smoke test could not start" in (champion_repo / ".mlops-ci" / "crash.log").read_text()
    assert f"traceback in {champion_repo / '.mlops-ci' / 'crash.log'}" in capsys.readouterr().err

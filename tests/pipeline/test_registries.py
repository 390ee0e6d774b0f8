"""Each backend registry routes a new entry through the real CLI: a tracking backend, a GitOps remote,
a trainer and a publisher registered here (test doubles that record what reached them, over the real
embedded backends where they need one) are chosen by name from `.mlops-ci.yaml` or the command line,
and a name no registry has is a config error at its line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import git
from mlops_ci.backends import gitops as gitops_role
from mlops_ci.backends import publishers, tracking, trainers
from mlops_ci.backends.gitops.git import GitRemote
from mlops_ci.backends.tracking.mlflow import MlflowTracking
from mlops_ci.backends.trainers.base import TrainResult, TrainSpec
from mlops_ci.cli.main import main
from mlops_ci.errors import ExitCode
from mlops_ci.records import Context, ModelPlan, ModelRecord, RunRecord, save_record
from mlops_ci.stages.register import EVALUATION_TAG
from registry import build_registry

SEEN: list[tuple[str, str]] = []


class RecordingTracking(MlflowTracking):
    """The embedded MLflow registry, noting each alias it moves."""

    def set_alias(self, model: str, alias: str, version: str) -> None:
        SEEN.append(("tracking", f"{model}@{alias}=v{version}"))
        super().set_alias(model, alias, version)


class RecordingGitOps(GitRemote):
    """The embedded git GitOps repository, noting each checkout."""

    def checkout(self):
        SEEN.append(("gitops", self.url))
        return super().checkout()


class FakeTrainer:
    """A trainer that trains nothing and says so: what `train` reports is what it returned."""

    name = "fake"
    reads_worktree = True
    stops_pull_requests = False

    def image(self, train) -> str:
        return "registry.example/fake@sha256:" + "f" * 64

    def title(self, model: str, spec: TrainSpec) -> str:
        return f"training {model} the fake way"

    def command(self, spec: TrainSpec) -> list[str]:
        return ["fake-train", spec.script]

    def run(self, spec: TrainSpec, progress) -> TrainResult:
        SEEN.append(("trainer", spec.model))
        return TrainResult(returncode=1, timed_out=False, log_tail=("the fake trainer ran",), duration_s=0.0,
                           error_line="the fake trainer ran")


class FakePublisher:
    name = "fake"
    posted_to = None

    def __init__(self, report_path: Path) -> None:
        self.report_path = report_path

    @classmethod
    def from_env(cls, env=None, *, report_path: Path, **_) -> FakePublisher:
        return cls(report_path)

    def preview(self, record, markdown: str) -> str:
        return "the fake publisher would post"

    def publish(self, record, markdown: str) -> str:
        SEEN.append(("publisher", record.context.head_sha))
        return "fake://posted"


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    SEEN.clear()
    monkeypatch.setitem(tracking.TRACKING, "recording", RecordingTracking)
    monkeypatch.setitem(gitops_role.GITOPS, "recording", RecordingGitOps)
    monkeypatch.setitem(trainers.TRAINERS, "fake", FakeTrainer)
    monkeypatch.setitem(publishers.PUBLISHERS, "fake", FakePublisher)


def configure(repo: Path, text: str) -> Path:
    config = repo / ".mlops-ci.yaml"
    config.write_text(config.read_text() + text)
    return config


def test_a_tracking_backend_and_a_gitops_remote_are_chosen_by_name(tiny_repo, tmp_path):
    (tiny_repo / ".mlops-ci").mkdir()
    shutil.copy(build_registry(tmp_path / "registry", 1, lambda n: {EVALUATION_TAG: "pass"}),
                tiny_repo / ".mlops-ci" / "mlflow.db")
    config = configure(tiny_repo, "tracking:\n  backend: recording\ngitops:\n  backend: recording\n")
    assert main(["promote", "--config", str(config), "--model", "tiny", "--env", "staging", "--version", "1"]) == 0
    assert ("tracking", "tiny@staging=v1") in SEEN
    assert ("gitops", str(tiny_repo / ".mlops-ci" / "gitops.git")) in SEEN
    assert git(tiny_repo / ".mlops-ci" / "gitops.git", "log", "-1", "--format=%s", "main") == \
        "promote tiny v1 to staging"


def test_a_trainer_is_chosen_by_name_and_asked_for_its_capabilities(tiny_repo, capsys):
    config = configure(tiny_repo, "")
    text = config.read_text().replace("      nproc_per_node: 1\n", "      nproc_per_node: 1\n      backend: fake\n")
    config.write_text(text)
    assert main(["train", "--config", str(config), "--force"]) == ExitCode.BACKEND
    out = capsys.readouterr()
    assert ("trainer", "tiny") in SEEN and "the fake trainer ran" in out.err
    assert "training tiny the fake way" in out.out + out.err
    # and from the command line, over the config's choice
    assert main(["train", "--config", str(config), "--backend", "torchrun", "--dry-run"]) == 0
    assert "torch.distributed.run" in capsys.readouterr().out
    assert main(["train", "--config", str(config), "--backend", "nope", "--dry-run"]) == ExitCode.USAGE
    assert "--backend 'nope' is not a trainer: use one of torchrun, argo, fake" in capsys.readouterr().err


def test_a_publisher_is_chosen_by_name(tmp_path, capsys):
    record = RunRecord(context=Context(source="local", event="local", default_branch="main", head_sha="a" * 40),
                       models={"m": ModelRecord(model="m", plan=ModelPlan(model="m", stages=["check"]))})
    path = save_record(record, tmp_path / "record.json")
    assert main(["publish", "--record", str(path), "--to", "fake"]) == 0
    assert SEEN == [("publisher", "a" * 40)] and "fake://posted" in capsys.readouterr().out
    assert main(["publish", "--record", str(path), "--to", "fake", "--dry-run"]) == 0
    assert "the fake publisher would post" in capsys.readouterr().out
    assert main(["publish", "--record", str(path), "--to", "nowhere"]) == ExitCode.USAGE
    assert "'nowhere' is not a publisher: use one of local, github, fake" in capsys.readouterr().err


@pytest.mark.parametrize("setting, where, role", [
    ("tracking:\n  backend: mongo\n", "tracking.backend", "tracking backend"),
    ("gitops:\n  backend: svn\n", "gitops.backend", "GitOps remote"),
])
def test_an_unknown_backend_name_is_a_config_error_at_its_line(tiny_repo, capsys, setting, where, role):
    config = configure(tiny_repo, setting)
    line = len(config.read_text().splitlines())
    assert main(["config", "validate", "--config", str(config)]) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert f"{config}:{line}:" in err and f"{where}: '" in err and f"is not a {role}" in err
    assert "(fix: use one of:" in err

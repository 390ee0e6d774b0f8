"""Skip work that cannot change the answer: a model whose training fingerprint (code, data, params,
settings, image) equals the champion's (or any registered version's) is not retrained; its model and
metrics are reused. The fingerprint is taken from the content that is trained, not from a SHA.

One champion is trained and promoted for the module (the real pipeline: git, MLflow on SQLite,
torchrun), and re-run as a user does (`mlops-ci run`). Tests that change the repository work on
git clones of it and ask the real train stage, as a dry run, what it would do against the
champion's registry: no training is needed to know that it would train.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import AUTHOR, FIXTURES, cli, commit, git, set_params, write_tiny_data
from mlops_ci import fingerprint
from mlops_ci.backends.tracking.mlflow import MlflowTracking
from mlops_ci.backends.trainers import trainer_for
from mlops_ci.config import load_config
from mlops_ci.context import local_context
from mlops_ci.pipeline import default_backends, plan_pipeline, run_pipeline
from mlops_ci.plan import plan_model
from mlops_ci.records import DataVersion, ModelPlan, TrainingRecord, load_record
from mlops_ci.stages.candidate import candidate_from_record
from mlops_ci.stages.promote import promote
from mlops_ci.stages.train import run_training
from mlops_ci.workspace import Workspace

pytestmark = pytest.mark.slow

IMAGE = "ghcr.io/acme/tiny-train@sha256:" + "a" * 64


def _isolate(mp: pytest.MonkeyPatch, home: Path) -> None:
    """What conftest's isolated_env does, for the module-scoped champion."""
    for key, value in {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
                       "XDG_CONFIG_HOME": str(home / ".config"), "GIT_CONFIG_NOSYSTEM": "1",
                       "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", **AUTHOR}.items():
        mp.setenv(key, value)
    for key in list(os.environ):
        if key.startswith(("GITHUB_", "MLFLOW_TRACKING", "MLFLOW_RUN", "MLFLOW_EXPERIMENT", "RUNNER_")):
            mp.delenv(key, raising=False)
    mp.delenv("CI", raising=False)


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> Path:
    """tiny trained on main (v1, no champion yet), then promoted to staging: the champion."""
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, tmp_path_factory.mktemp("home"))
        repo = tmp_path_factory.mktemp("champion") / "tiny"
        shutil.copytree(FIXTURES / "tiny", repo)
        (repo / ".gitignore").write_text(".mlops-ci/\n")
        write_tiny_data(repo)
        git(repo, "init", "--quiet", "--initial-branch=main")
        commit(repo, "tiny model")
        ws = workspace(repo)
        backends = default_backends(ws)
        record = run_pipeline(ws, local_context(repo, default_branch="main"), backends=backends)
        first = record.model("tiny")
        assert first.training.status == "succeeded" and first.registration.version == "1"
        assert first.training.fingerprint.note == "no champion (tiny@staging is not set) to compare with"
        assert first.training.fingerprint.source == "the work tree"
        promote(ws, candidate_from_record(ws, record, "tiny"), "staging", tracking=backends.tracking,
                gitops=backends.gitops)
    return repo


def tracking_of(repo: Path) -> MlflowTracking:
    return MlflowTracking(f"sqlite:///{repo / '.mlops-ci' / 'mlflow.db'}")


def client(repo: Path):
    return tracking_of(repo).client


def mv_run_loss(repo: Path, run_id: str) -> float:
    return client(repo).get_run(run_id).data.metrics["train_loss"]


def runs(repo: Path) -> list:
    c = client(repo)
    return c.search_runs([c.get_experiment_by_name("mlops-ci/tiny").experiment_id],
                         order_by=["attributes.start_time DESC"])


def versions(repo: Path) -> list[int]:
    return sorted(int(v.version) for v in client(repo).search_model_versions("name='tiny'"))


@pytest.fixture
def clone(champion, tmp_path) -> Path:
    """A git clone of the champion's repository (its registry stays with the champion)."""
    repo = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(champion), str(repo))
    return repo


def workspace(repo: Path) -> Workspace:
    return Workspace.from_config(load_config(repo / ".mlops-ci.yaml"))


def would_train(repo: Path, registry: Path, *, force: bool = False) -> TrainingRecord:
    """The real train stage as a dry run in ``repo``, against the registry of ``registry``."""
    ws = workspace(repo)
    ctx = local_context(repo, default_branch="main")
    plan = plan_model(ws, ctx, "tiny", force=force)
    return run_training(ws, ctx, plan, tracking=tracking_of(registry), trainer=trainer_for("torchrun"),
                        dry_run=True)


def reused(t: TrainingRecord) -> bool:
    return t.reused is not None and not t.command


# -- end to end ---------------------------------------------------------------------------------

def test_a_rerun_of_the_champion_s_commit_reuses_it(champion):
    before_runs, before_versions = len(runs(champion)), versions(champion)
    proc = cli(champion, "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(runs(champion)) == before_runs and versions(champion) == before_versions == [1]

    entry = json.loads((champion / ".mlops-ci/record.json").read_text())["models"]["tiny"]
    t, ev, reg = entry["results"]["train"], entry["results"]["evaluate"], entry["results"]["register"]
    mv = client(champion).get_model_version("tiny", "1")
    assert t["status"] == "skipped" and t["reused"]["version"] == "1" and t["run_id"] is None
    assert t["reused"]["run_id"] == mv.run_id and t["reused"]["champion"] is True
    assert t["fingerprint"]["digest"] == mv.tags["mlops_ci.fingerprint"] == \
        client(champion).get_run(mv.run_id).data.tags["mlops_ci.fingerprint"]
    assert ev["reused"]["version"] == "1" and ev["recorded"] is True and ev["status"] == "pass"
    assert {m["name"]: m["candidate"] for m in ev["metrics"]} == {
        k.removeprefix("mlops_ci.metric."): float(v) for k, v in mv.tags.items() if k.startswith("mlops_ci.metric.")}
    assert t["history"] and t["history"][0]["train_loss"] == mv_run_loss(champion, mv.run_id)
    assert reg["reused"] is True and reg["version"] == "1" and reg["digest"] == mv.tags["mlops_ci.digest"]
    assert entry["results"]["deployment"]["noop"] is True

    report = (champion / ".mlops-ci/report.md").read_text()
    assert ("Not retrained: code, data, params, settings and image are unchanged since the champion "
            f"(v1, run `{mv.run_id}`); metrics are the champion's.") in report
    assert "Reuses **tiny v1**" in report and "(nothing new registered)" in report
    assert f"| roc\\_auc ↑ | {float(mv.tags['mlops_ci.metric.roc_auc']):.4f} | ✅ |" in report  # names escaped
    assert "No change: staging already serves v1." in report

    # the merge-promote job promotes from this record: a no-op, nothing committed
    ws = workspace(champion)
    backends = default_backends(ws)
    record = load_record(champion / ".mlops-ci/record.json")
    done = promote(ws, candidate_from_record(ws, record, "tiny"), "staging", tracking=backends.tracking,
                   gitops=backends.gitops)
    assert done.noop and done.version == "1"


def test_force_trains_an_unchanged_model(champion):
    ws = workspace(champion)
    ctx = local_context(champion, default_branch="main")
    plain = plan_pipeline(ws, ctx, backends=default_backends(ws)).model("tiny").training
    assert plain.reused is not None and not plain.command
    forced = plan_pipeline(ws, ctx, backends=default_backends(ws), force=True).model("tiny").training
    assert forced.reused is None and forced.command[-1] == "train.py"
    assert forced.fingerprint.digest == plain.fingerprint.digest
    assert forced.fingerprint.note == "retrained because of --force (not compared with the registry)"


# -- what the train stage decides against the champion -----------------------------------------

@pytest.mark.parametrize("component, change", [
    ("params", lambda repo: set_params(repo, epochs=151)),
    ("data", lambda repo: write_tiny_data(repo, seed=1)),
    ("code", lambda repo: (repo / "tiny_model.py").write_text((repo / "tiny_model.py").read_text() + "# v2\n")),
    ("settings", lambda repo: (repo / ".mlops-ci.yaml").write_text(
        (repo / ".mlops-ci.yaml").read_text().replace("nproc_per_node: 1", "nproc_per_node: 2"))),
])
def test_each_changed_input_retrains_and_says_which(champion, clone, component, change):
    git(clone, "checkout", "--quiet", "-b", f"pr/{component}")
    change(clone)
    commit(clone, f"change {component}")
    t = would_train(clone, champion)
    assert t.reused is None and t.command, t.skip_reason
    assert t.fingerprint.changed == [component]
    assert t.fingerprint.note == f"{component} changed since champion v1"


def test_a_change_that_is_undone_is_not_retrained(champion, clone):
    set_params(clone, epochs=151)
    commit(clone, "more epochs")
    set_params(clone, epochs=150)
    commit(clone, "back to 150 epochs")
    ws, ctx = workspace(clone), local_context(clone, default_branch="main")
    assert plan_model(ws, ctx, "tiny").changed_paths == ["params.yaml"]  # changed against the base...
    t = would_train(clone, champion)
    assert reused(t) and t.reused.version == "1"  # ...but identical to the champion
    assert t.skip_reason.startswith("not retrained: code, data, params, settings and image are unchanged "
                                    "since champion v1")
    assert would_train(clone, champion, force=True).command  # --force trains anyway


def test_uncommitted_changes_outside_the_model_s_paths_keep_the_match(champion, clone):
    (clone / "NOTES.md").write_text("notes, not part of the model's paths\n")
    (clone / ".gitignore").write_text(".mlops-ci/\n*.log\n")
    (clone / "train.log").write_text("ignored\n")
    assert reused(would_train(clone, champion))


@pytest.mark.parametrize("dirty", ["modified", "staged", "untracked"])
def test_a_dirty_work_tree_is_fingerprinted_as_it_is(champion, clone, dirty):
    """What is trained is the work tree: uncommitted content is part of the fingerprint, so a change
    retrains (and is recorded under the content it had), and the same content matches again."""
    if dirty == "untracked":
        (clone / "data" / "extra.csv").write_text("x1,x2,color,label\n0,0,red,1\n")
        culprit = clone / "data" / "extra.csv"
    else:
        (clone / "tiny_model.py").write_text((clone / "tiny_model.py").read_text() + "# local edit\n")
        culprit = clone / "tiny_model.py"
        if dirty == "staged":
            git(clone, "add", "tiny_model.py")
    t = would_train(clone, champion)
    assert t.reused is None and t.command
    fp = t.fingerprint
    assert fp.digest and fp.source == "the work tree" and fp.unavailable is None
    assert fp.changed == ["code"] and fp.note == "code changed since champion v1"
    culprit.unlink() if dirty == "untracked" else git(clone, "checkout", "HEAD", "--", "tiny_model.py")
    assert reused(would_train(clone, champion))  # the same content again: the champion's fingerprint


def test_the_same_content_has_the_same_fingerprint_whatever_the_commit(champion, clone):
    """A squash or rebase of the same change, or a test-merge checkout: other SHAs, same content."""
    ws = workspace(clone)

    def both():
        ctx = local_context(clone, default_branch="main")
        plan = plan_model(ws, ctx, "tiny", force=True)
        return (fingerprint.compute(ws, ctx, plan, trainer=trainer_for("torchrun"), worktree=True),
                fingerprint.compute(ws, ctx, plan, trainer=trainer_for("torchrun"), worktree=False))

    first_tree, first_commit = both()
    assert first_tree.digest == first_commit.digest  # the work tree and its commit: the same content
    git(clone, "commit", "--quiet", "--allow-empty", "-m", "an empty commit: a new SHA, the same tree")
    (clone / "tiny_model.py").write_text((clone / "tiny_model.py").read_text())  # touched, same bytes
    tree, commit_ = both()
    assert tree.digest == commit_.digest == first_tree.digest
    assert tree.source == "the work tree" and commit_.source != first_commit.source  # another SHA


def test_no_champion_trains_unless_a_version_has_the_same_inputs(champion, clone):
    cfg = clone / ".mlops-ci.yaml"  # the champion of prod, where nothing was promoted
    cfg.write_text(cfg.read_text().replace("environments:\n", "environments:\n  prod:\n    namespace: tiny-prod\n")
                   .replace("    evaluation:\n", "    evaluation:\n      champion_env: prod\n"))
    t = would_train(clone, champion)
    assert t.command == [] and t.reused.version == "1" and not t.reused.champion  # v1: same inputs, not champion
    assert t.fingerprint.note == "code, data, params, settings and image are unchanged since v1"
    set_params(clone, epochs=151)  # other inputs: nothing to reuse, and no champion to compare with
    t = would_train(clone, champion)
    assert t.reused is None and t.command
    assert t.fingerprint.digest and t.fingerprint.note == "no champion (tiny@prod is not set) to compare with"


# -- the fingerprint itself ---------------------------------------------------------------------

def test_the_image_is_a_component(clone):
    cfg = clone / ".mlops-ci.yaml"
    argo = f"      argo:\n        server_url: https://argo.example.com\n        image: {IMAGE}\n"
    text = cfg.read_text().replace("      timeout_minutes: 5\n", "      timeout_minutes: 5\n" + argo)
    cfg.write_text(text)
    commit(clone, "train on argo")
    ctx = local_context(clone, default_branch="main")
    ws = workspace(clone)
    plan = plan_model(ws, ctx, "tiny")
    a = fingerprint.compute(ws, ctx, plan, trainer=trainer_for("argo"), worktree=False)
    local = fingerprint.compute(ws, ctx, plan, trainer=trainer_for("torchrun"), worktree=True)
    assert trainer_for("argo").image(ws.model("tiny").train) == IMAGE  # the image is the trainer's to say
    assert trainer_for("torchrun").image(ws.model("tiny").train) is None  # this machine: named by the trainer
    assert a.digest and a.digest != local.digest
    assert [k for k in fingerprint.COMPONENTS if a.components[k] != local.components[k]] == ["image"]

    cfg.write_text(text.replace(IMAGE, IMAGE.replace("a" * 64, "b" * 64)))
    commit(clone, "new training image")
    ctx = local_context(clone, default_branch="main")
    ws = workspace(clone)
    b = fingerprint.compute(ws, ctx, plan_model(ws, ctx, "tiny"), trainer=trainer_for("argo"), worktree=False)
    assert not fingerprint.compare(b, fingerprint.tags(a), label="champion v3")
    assert b.changed == ["image"] and b.note == "image changed since champion v3"
    again = fingerprint.compute(ws, ctx, plan_model(ws, ctx, "tiny"), trainer=trainer_for("argo"), worktree=False)
    assert again.digest == b.digest and fingerprint.compare(again, fingerprint.tags(b), label="v4")
    assert b.source == f"commit {ctx.head_sha[:12]}"


def test_the_fingerprint_is_stable_and_names_its_components(clone):
    ws, ctx = workspace(clone), local_context(clone, default_branch="main")
    plan = plan_model(ws, ctx, "tiny")
    fp = fingerprint.compute(ws, ctx, plan, trainer=trainer_for("torchrun"), worktree=True)
    assert fp == fingerprint.compute(ws, ctx, plan, trainer=trainer_for("torchrun"), worktree=True)
    assert sorted(fp.components) == sorted(fingerprint.COMPONENTS)
    assert fp.digest.startswith("sha256:") and len(fp.digest) == 71
    tags = fingerprint.tags(fp)
    assert tags["mlops_ci.fingerprint"] == fp.digest and tags["mlops_ci.fingerprint.params"] == fp.components["params"]


def test_data_without_a_content_hash_has_no_fingerprint(clone):
    ws, ctx = workspace(clone), local_context(clone, default_branch="main")
    plan = ModelPlan(model="tiny", stages=["train", "evaluate"], data=[
        DataVersion(role="train", path="data/train.csv", head_md5=None),
        DataVersion(role="eval", path="data/eval.csv", head_md5="git:" + "0123" * 10)])
    fp = fingerprint.compute(ws, ctx, plan, trainer=trainer_for("argo"), worktree=False)
    assert fp.digest is None and fp.unavailable.startswith("data/train.csv has no content hash in commit")
    (clone / "data" / "train.csv").unlink()  # the work tree: neither there nor tracked by DVC
    git(clone, "rm", "--quiet", "--cached", "data/train.csv")
    fp = fingerprint.compute(ws, ctx, plan, trainer=trainer_for("torchrun"), worktree=True)
    assert fp.digest is None and fp.unavailable.startswith("data/train.csv has no content hash in the work tree")


def test_a_champion_without_a_fingerprint_is_not_matched(clone):
    ws, ctx = workspace(clone), local_context(clone, default_branch="main")
    fp = fingerprint.compute(ws, ctx, plan_model(ws, ctx, "tiny"), trainer=trainer_for("torchrun"), worktree=True)
    assert not fingerprint.compare(fp, {"mlops_ci.digest": "sha256:x"}, label="champion v7")
    assert fp.note.startswith("champion v7 has no training fingerprint")

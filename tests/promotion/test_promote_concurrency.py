"""Concurrent promotions into one GitOps repository, with real git (a bare remote, one clone per
promotion) and the real promote stage.

Every promotion of a new model appends its folder to the environment's kustomization.yaml, so
concurrent promotions of different models always collide in that one file: git cannot rebase two
appends to the same list. The git backend re-applies our entries to their list; a backend that
cannot (plain rebase) raises PushConflict and promote() plans again on the new tip. Only a change
to the same model's own files since the plan is a real conflict.

Two kinds of test: in-process ones that let a real promotion land between our clone and our push
(deterministic), and ones that start separate OS processes released at the same moment.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import git
from mlops_ci.backends.gitops import gitops_for
from mlops_ci.backends.gitops.git import GitCheckout, GitRemote, merge_kustomization
from mlops_ci.config import load_config
from mlops_ci.errors import ExitCode, PushConflict
from mlops_ci.serving import yamlio
from mlops_ci.stages.promote import Candidate, promote
from mlops_ci.workspace import Workspace

ENV_KUSTOMIZATION = "environments/staging/kustomization.yaml"

# The driver each promoter process runs: everything is imported and the workspace loaded before it
# waits at the barrier (the `go` file), so the promotions really start together.
DRIVER = r'''
import json, sys, time
from pathlib import Path

from mlops_ci.backends.gitops import gitops_for
from mlops_ci.config import load_config
from mlops_ci.errors import FatalError
from mlops_ci.stages.promote import Candidate, promote
from mlops_ci.workspace import Workspace


class AliasFileTracking:
    """Writes the alias moves and version tags promote() asks for to a JSON file.

    Not MLflow: these tests are about the git side, and 20 processes each importing mlflow would
    cost more CPU than the whole test may take on two cores. Promotion with real MLflow is tested
    end to end elsewhere (tests/pipeline/test_flow.py, tests/promotion/test_rollback.py)."""

    uri = "file-recorder://"

    def __init__(self, path):
        self.path = Path(path)
        self.data = {"aliases": {}, "tags": {}}

    def set_alias(self, name, alias, version):
        self.data["aliases"][f"{name}@{alias}"] = str(version)
        self.path.write_text(json.dumps(self.data))

    def set_version_tags(self, name, version, tags):
        self.data["tags"].setdefault(f"{name}/{version}", {}).update(tags)
        self.path.write_text(json.dumps(self.data))


config, model, version, out = sys.argv[1:5]
out = Path(out)
ws = Workspace.from_config(load_config(Path(config)), env={})
candidate = Candidate(model=model, version=version, artifact_uri=f"s3://models/{model}/m-{version}/artifacts",
                      digest="sha256:" + (version * 64)[:64], lineage={"run-id": f"run-{model}-{version}"},
                      gates_passed=True)
tracking = AliasFileTracking(out.with_suffix(".tracking.json"))
out.with_suffix(".ready").touch()
go = out.parent / "go"
while not go.exists():
    time.sleep(0.002)
try:
    record = promote(ws, candidate, "staging", tracking=tracking, gitops=gitops_for(ws))
except FatalError as err:
    print(err, file=sys.stderr)
    sys.exit(err.exit_code)
out.write_text(record.model_dump_json())
'''


def workspace(repo: Path, models: list[str]) -> Workspace:
    """The tiny project's config with its one model block repeated under each name in ``models``."""
    config = repo / ".mlops-ci.yaml"
    text = config.read_text()
    head, tiny = text[: text.index("  tiny:\n")], text[text.index("  tiny:\n"):]
    config.write_text(head + "".join(tiny.replace("  tiny:\n", f"  {m}:\n", 1) for m in models))
    return Workspace.from_config(load_config(config), env={})


def seed(ws: Workspace) -> str:
    """A base commit on the GitOps branch (no environment folder yet)."""
    remote = gitops_for(ws)
    with remote.checkout() as co:
        return co.commit_and_push({"README.md": b"serving manifests, written by mlops-ci\n"}, "base\n")


def candidate(model: str, version: str) -> Candidate:
    return Candidate(model=model, version=version, artifact_uri=f"s3://models/{model}/m-{version}/artifacts",
                     digest="sha256:" + (version * 64)[:64], lineage={"run-id": f"run-{model}-{version}"},
                     gates_passed=True)


class RecordingTracking:
    """Records alias moves and tags in memory (test double for the registry side; not MLflow)."""

    uri = "memory://"

    def __init__(self) -> None:
        self.aliases: dict[tuple[str, str], str] = {}

    def set_alias(self, name, alias, version):
        self.aliases[(name, alias)] = str(version)

    def set_version_tags(self, name, version, tags):
        pass


class PlainRebaseCheckout(GitCheckout):
    """A git checkout that resolves no conflict itself, as a backend doing a plain `git rebase`."""

    def _resolve_rebase(self, env):
        return False


class RacedRemote(GitRemote):
    """The real git remote, except that right after its first clone another promotion lands on
    the remote: our promotion then plans on a tip that is stale by the time it pushes."""

    def __init__(self, ws: Workspace, race, *, plain_rebase: bool = False) -> None:
        base = gitops_for(ws)
        super().__init__(base.url, base.branch, base.author)
        self.race = race
        self.plain_rebase = plain_rebase
        self.clones = 0

    @contextmanager
    def checkout(self):
        with super().checkout() as co:
            self.clones += 1
            if self.race is not None:
                race, self.race = self.race, None
                race()
            yield PlainRebaseCheckout(self, co.path) if self.plain_rebase else co


def remote_git(ws: Workspace, *args: str) -> str:
    return git(Path(ws.gitops_remote), *args)


def changed_files(ws: Workspace, sha: str) -> set[str]:
    return set(remote_git(ws, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).splitlines())


def race_another_model(tiny_repo, *, plain_rebase: bool):
    ws = workspace(tiny_repo, ["alpha", "beta"])
    base = seed(ws)
    tracking = RecordingTracking()
    theirs = {}
    remote = RacedRemote(ws, lambda: theirs.setdefault(
        "rec", promote(ws, candidate("beta", "1"), "staging", tracking=tracking, gitops=gitops_for(ws))),
        plain_rebase=plain_rebase)
    ours = promote(ws, candidate("alpha", "1"), "staging", tracking=tracking, gitops=remote)
    return ws, base, tracking, theirs["rec"], remote, ours


def assert_both_landed(ws, tracking, theirs, ours) -> None:
    assert remote_git(ws, "rev-parse", "main") == ours.commit_sha
    assert remote_git(ws, "rev-parse", "main~1") == theirs.commit_sha
    assert remote_git(ws, "rev-list", "--count", "main") == "3"
    assert remote_git(ws, "rev-list", "--merges", "--count", "main") == "0"
    assert yamlio.load(remote_git(ws, "show", f"main:{ENV_KUSTOMIZATION}"))["resources"] == ["beta", "alpha"]
    assert changed_files(ws, ours.commit_sha) == {ENV_KUSTOMIZATION, "environments/staging/alpha/inferenceservice.yaml",
                                                  "environments/staging/alpha/kustomization.yaml"}
    assert "m-1" in remote_git(ws, "show", "main:environments/staging/beta/inferenceservice.yaml")
    assert tracking.aliases == {("beta", "staging"): "1", ("alpha", "staging"): "1"}


def test_another_model_landing_first_is_rebased_and_the_environment_lists_both(tiny_repo):
    ws, base, tracking, theirs, remote, ours = race_another_model(tiny_repo, plain_rebase=False)
    # both created environments/staging/kustomization.yaml; the rebase re-applied our entry to theirs
    assert remote.clones == 1 and ours.base_commit == base
    assert_both_landed(ws, tracking, theirs, ours)


def test_a_backend_that_cannot_rebase_it_makes_promote_plan_again_on_the_new_tip(tiny_repo):
    ws, base, tracking, theirs, remote, ours = race_another_model(tiny_repo, plain_rebase=True)
    assert remote.clones == 2 and ours.base_commit == theirs.commit_sha != base
    assert_both_landed(ws, tracking, theirs, ours)


def test_merge_kustomization_reapplies_our_resources_to_theirs_and_nothing_else():
    base = b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- a\n- old\n"
    theirs = (b"# hand-written: keep me\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
              b"commonLabels: {team: ml}\nresources:\n- a\n- old\n- b  # theirs\n")
    ours = b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- a\n- c\n"
    merged = merge_kustomization(base, theirs, ours).decode()
    assert merged.startswith("# hand-written: keep me\n") and "commonLabels: {team: ml}" in merged
    assert yamlio.load(merged)["resources"] == ["a", "b", "c"]  # ours removed "old", added "c"
    # both created it (no base): the same header, two lists
    assert yamlio.load(merge_kustomization(None, b"kind: Kustomization\nresources: [x]\n",
                                           b"kind: Kustomization\nresources: [y]\n"))["resources"] == ["x", "y"]
    # anything but resources changed on our side and not as theirs: not ours to resolve
    assert merge_kustomization(base, theirs, ours.replace(b"kind: Kustomization", b"kind: Component")) is None
    assert merge_kustomization(base, b"resources: [a, {path: b}]\n", ours) is None
    assert merge_kustomization(base, b"resources: [a\n", ours) is None


def test_a_promotion_of_the_same_model_landing_first_is_a_conflict_not_an_overwrite(tiny_repo):
    ws = workspace(tiny_repo, ["alpha"])
    seed(ws)
    tracking = RecordingTracking()
    first = promote(ws, candidate("alpha", "1"), "staging", tracking=tracking, gitops=gitops_for(ws))
    theirs = {}
    remote = RacedRemote(ws, lambda: theirs.setdefault(
        "rec", promote(ws, candidate("alpha", "2"), "staging", tracking=tracking, gitops=gitops_for(ws))))
    path = "environments/staging/alpha/inferenceservice.yaml"
    with pytest.raises(PushConflict, match=f"GitOps conflict in {path}") as caught:
        promote(ws, candidate("alpha", "3"), "staging", tracking=tracking, gitops=remote)
    assert caught.value.exit_code == ExitCode.BACKEND  # a lost race: the input was fine, retry later
    assert first.commit_sha and theirs["rec"].base_commit == first.commit_sha
    # v2 (landed first) is served; v3 neither overwrote it nor moved the alias
    assert remote_git(ws, "rev-parse", "main") == theirs["rec"].commit_sha
    assert "m-2/artifacts" in remote_git(ws, "show", f"main:{path}")
    assert tracking.aliases == {("alpha", "staging"): "2"}


def start_promoters(tmp_path: Path, config: Path, jobs: list[tuple[str, str]]):
    """One OS process per (model, version), each waiting at the barrier; returns them once all wait."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    work = tmp_path / "promoters"
    work.mkdir()
    procs = []
    for i, (model, version) in enumerate(jobs):
        out = work / f"{i:02d}-{model}-{version}.json"
        procs.append((out, subprocess.Popen([sys.executable, str(driver), str(config), model, version, str(out)],
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for out, proc in procs:
        while not out.with_suffix(".ready").exists():
            if proc.poll() is not None:
                raise AssertionError(f"promoter {out.name} died before the barrier: {proc.communicate()[1]}")
            try:
                proc.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                pass
    return work, procs


def release(work: Path, procs) -> list[tuple[Path, int, str]]:
    (work / "go").touch()
    results = []
    for out, proc in procs:
        _, stderr = proc.communicate(timeout=300)
        results.append((out, proc.returncode, stderr))
    return results


def test_twenty_processes_promoting_twenty_models_at_once_all_land_linearly(tiny_repo, tmp_path):
    models = [f"m{i:02d}" for i in range(20)]
    ws = workspace(tiny_repo, models)
    base = seed(ws)
    work, procs = start_promoters(tmp_path, ws.loaded.path, [(m, str(i + 1)) for i, m in enumerate(models)])
    results = release(work, procs)
    assert [(out.name, code, err) for out, code, err in results if code != 0] == []

    records = {json.loads(out.read_text())["model"]: json.loads(out.read_text()) for out, _, _ in results}
    commits = remote_git(ws, "rev-list", "--reverse", f"{base}..main").splitlines()
    assert len(commits) == 20 and remote_git(ws, "rev-list", "--count", "main") == "21"
    assert remote_git(ws, "rev-list", "--merges", "main") == ""  # linear: rebased or re-planned, never merged
    assert sorted(r["commit_sha"] for r in records.values()) == sorted(commits)
    for sha in commits:
        model = remote_git(ws, "log", "-1", "--format=%(trailers:key=Model,valueonly)", sha).strip()
        folder = f"environments/staging/{model}"
        touched = changed_files(ws, sha)
        assert touched - {ENV_KUSTOMIZATION} == {f"{folder}/inferenceservice.yaml", f"{folder}/kustomization.yaml"}
        assert records[model]["commit_sha"] == sha
    # nothing lost: every model is listed and serves the version its promoter pinned
    listed = yamlio.load(remote_git(ws, "show", f"main:{ENV_KUSTOMIZATION}"))["resources"]
    assert sorted(listed) == models and len(listed) == 20
    for i, model in enumerate(models):
        isvc = yamlio.load(remote_git(ws, "show", f"main:environments/staging/{model}/inferenceservice.yaml"))
        assert isvc["spec"]["predictor"]["model"]["storageUri"] == f"s3://models/{model}/m-{i + 1}/artifacts"
    for out, _, _ in results:
        moved = json.loads(out.with_suffix(".tracking.json").read_text())
        model = json.loads(out.read_text())["model"]
        assert moved["aliases"] == {f"{model}@staging": records[model]["version"]}


def test_two_processes_promoting_the_same_model_at_once_never_overwrite_silently(tiny_repo, tmp_path):
    ws = workspace(tiny_repo, ["alpha"])
    seed(ws)
    first = promote(ws, candidate("alpha", "1"), "staging", tracking=RecordingTracking(), gitops=gitops_for(ws))
    path = "environments/staging/alpha/inferenceservice.yaml"
    work, procs = start_promoters(tmp_path, ws.loaded.path, [("alpha", "2"), ("alpha", "3")])
    results = release(work, procs)

    landed = [json.loads(out.read_text()) for out, code, _ in results if code == 0]
    failed = [(code, err) for _, code, err in results if code != 0]
    assert landed, f"neither promotion landed: {failed}"
    tip = remote_git(ws, "rev-parse", "main")
    last = next(r for r in landed if r["commit_sha"] == tip)
    served = yamlio.load(remote_git(ws, "show", f"main:{path}"))
    assert served["spec"]["predictor"]["model"]["storageUri"] == last["artifact_uri"]
    assert remote_git(ws, "rev-list", "--merges", "main") == ""
    if failed:  # they raced: one landed, the other stopped with a conflict naming the file
        assert len(landed) == 1 and len(failed) == 1
        code, err = failed[0]
        assert code == ExitCode.BACKEND and f"GitOps conflict in {path}" in err
        assert last["base_commit"] == first.commit_sha
        assert remote_git(ws, "rev-list", "--count", f"{first.commit_sha}..main") == "1"
    else:  # no overlap: the second planned on top of the first, and its diff showed what it replaced
        earlier = next(r for r in landed if r["commit_sha"] != tip)
        assert earlier["base_commit"] == first.commit_sha and last["base_commit"] == earlier["commit_sha"]
        diff = next(c["diff"] for c in last["changes"] if c["path"] == path)
        assert f"-      storageUri: {earlier['artifact_uri']}" in diff

"""Promotion into a real git GitOps repository: manifests, trailers, no-ops, dry runs, conflicts.

The tracking side is a small in-memory recorder here (it is not MLflow and not called so);
the end-to-end tests use real MLflow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CONTRACTS, GOLDEN, git, golden, kserve_errors
from mlops_ci.backends.gitops import gitops_for
from mlops_ci.backends.gitops.git import GitRemote
from mlops_ci.cli.main import main
from mlops_ci.config import load_config
from mlops_ci.config.schema import InferenceServiceServing
from mlops_ci.errors import ConfigError, ExitCode, GateFailed, PromotionError, PushConflict, UsageError
from mlops_ci.serving import kserve, yamlio
from mlops_ci.stages.promote import Candidate, promote
from mlops_ci.workspace import Workspace



class RecordingTracking:
    """Records alias moves and tags (test double for the registry side of promotion)."""

    uri = "memory://"

    def __init__(self) -> None:
        self.aliases: dict[tuple[str, str], str] = {}
        self.tags: dict[tuple[str, str], dict] = {}

    def set_alias(self, name, alias, version):
        self.aliases[(name, alias)] = str(version)

    def set_version_tags(self, name, version, tags):
        self.tags.setdefault((name, str(version)), {}).update(tags)


def candidate(version="3", model="tiny", passed=True) -> Candidate:
    return Candidate(model=model, version=version,
                     artifact_uri=f"s3://models/{model}/m-{version}/artifacts", digest=f"sha256:{version * 64}"[:71],
                     lineage={"run-id": f"run{version}", "source-commit": "c" * 40, "source-pr": "12",
                              "data-train": "md5:" + "a" * 32},
                     gates_passed=passed, gate_summary="" if passed else "roc_auc 0.5 < min 0.6")


@pytest.fixture
def ws(tiny_repo) -> Workspace:
    # a second model, "other", shares the GitOps repository
    config = tiny_repo / ".mlops-ci.yaml"
    text = config.read_text()
    tiny = text[text.index("  tiny:\n"):]
    config.write_text(text + tiny.replace("  tiny:\n", "  other:\n", 1))
    # promotions validate InferenceServices against the KServe CRD of the contracts
    return Workspace.from_config(load_config(config), env={"MLOPS_CI_CRDS": str(CONTRACTS / "kserve")})


def show(ws: Workspace, rev: str, path: str) -> str:
    return git(Path(ws.gitops_remote), "show", f"{rev}:{path}")


def test_rendered_inferenceservice_is_valid_kserve_and_stable():
    v = kserve.ServedVersion(model="churn", version="7", artifact_uri="s3://models/churn/m-7/artifacts",
                             digest="sha256:" + "d" * 64, env="prod", namespace="churn-prod",
                             lineage={"run-id": "abc", "source-commit": "e" * 40, "source-pr": "12"})
    doc = kserve.render(v, InferenceServiceServing(min_replicas=2, max_replicas=5, runtime="kserve-mlserver"))
    assert kserve_errors(doc) == []
    golden("inferenceservice.yaml", yamlio.dump(doc).decode())
    broken = {**doc, "spec": {"predictor": {**doc["spec"]["predictor"], "minReplicas": "two"}}}
    assert kserve_errors(broken)  # the validator bites


def test_first_promotion_commits_layout_with_trailers_then_moves_alias(ws):
    tracking = RecordingTracking()
    rec = promote(ws, candidate("3"), "staging", tracking=tracking, gitops=gitops_for(ws))
    assert not rec.noop and rec.commit_sha and {c.action for c in rec.changes} == {"create"}
    message = git(Path(ws.gitops_remote), "log", "-1", "--format=%B", rec.commit_sha)
    assert message.startswith("promote tiny v3 to staging")
    trailers = git(Path(ws.gitops_remote), "log", "-1", "--format=%(trailers:only,unfold)", rec.commit_sha)
    assert "Model-Version: 3" in trailers and "MLflow-Run-Id: run3" in trailers
    assert "Source-Commit: " + "c" * 40 in trailers and "Source-PR: 12" in trailers
    isvc = yamlio.load(show(ws, rec.commit_sha, "environments/staging/tiny/inferenceservice.yaml"))
    assert kserve_errors(isvc) == []
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://models/tiny/m-3/artifacts"
    assert isvc["metadata"]["namespace"] == "tiny-staging"
    assert isvc["metadata"]["annotations"]["mlops-ci.dev/source-pr"] == "12"
    assert yamlio.load(show(ws, rec.commit_sha, "environments/staging/kustomization.yaml"))["resources"] == ["tiny"]
    assert tracking.aliases == {("tiny", "staging"): "3"}
    assert tracking.tags[("tiny", "3")] == {"mlops_ci.deployed.staging": rec.commit_sha}


def test_repromoting_the_same_version_is_a_noop(ws):
    tracking = RecordingTracking()
    first = promote(ws, candidate("3"), "staging", tracking=tracking, gitops=gitops_for(ws))
    again = promote(ws, candidate("3"), "staging", tracking=tracking, gitops=gitops_for(ws))
    assert again.noop and again.commit_sha == first.commit_sha
    assert git(Path(ws.gitops_remote), "rev-list", "--count", "main") == "1"


def test_dry_run_shows_the_diff_and_changes_nothing(ws):
    tracking = RecordingTracking()
    promote(ws, candidate("3"), "staging", tracking=tracking, gitops=gitops_for(ws))
    plan = promote(ws, candidate("4"), "staging", tracking=tracking, gitops=gitops_for(ws), dry_run=True)
    assert plan.dry_run and not plan.noop and plan.commit_sha is None
    assert plan.base_commit == git(Path(ws.gitops_remote), "rev-parse", "main")
    changed = [c for c in plan.changes if c.action != "unchanged"]
    assert [c.path for c in changed] == ["environments/staging/tiny/inferenceservice.yaml"]
    assert "-      storageUri: s3://models/tiny/m-3/artifacts" in changed[0].diff
    assert "+      storageUri: s3://models/tiny/m-4/artifacts" in changed[0].diff
    assert git(Path(ws.gitops_remote), "rev-list", "--count", "main") == "1"
    assert tracking.aliases == {("tiny", "staging"): "3"}


def test_failed_gates_are_refused_unless_forced_with_a_reason(ws):
    tracking = RecordingTracking()
    with pytest.raises(GateFailed, match="did not pass its gates .roc_auc 0.5 < min 0.6"):
        promote(ws, candidate("5", passed=False), "staging", tracking=tracking, gitops=gitops_for(ws))
    with pytest.raises(UsageError, match="non-empty --reason"):
        promote(ws, candidate("5", passed=False), "staging", tracking=tracking, gitops=gitops_for(ws),
                force_reason="  ")
    assert not Path(ws.gitops_remote, "refs/heads/main").exists() and tracking.aliases == {}
    rec = promote(ws, candidate("5", passed=False), "staging", tracking=tracking, gitops=gitops_for(ws),
                  force_reason="hotfix for incident 42")
    isvc = yamlio.load(show(ws, rec.commit_sha, "environments/staging/tiny/inferenceservice.yaml"))
    assert isvc["metadata"]["annotations"]["mlops-ci.dev/forced-reason"] == "hotfix for incident 42"
    assert rec.forced_reason == "hotfix for incident 42"


def test_hand_edited_manifest_keeps_comments_and_unowned_fields(ws, tmp_path):
    hand = (Path(__file__).resolve().parents[1] / "golden" / "hand-edited-isvc.yaml").read_text()
    clone = tmp_path / "clone"
    remote = gitops_for(ws)
    remote.ensure_exists()
    git(tmp_path, "clone", "--quiet", ws.gitops_remote, str(clone))
    target = clone / "environments/staging/tiny/inferenceservice.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(hand)
    git(clone, "checkout", "--quiet", "-b", "main")
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "hand-written manifest")
    git(clone, "push", "--quiet", "origin", "main")
    rec = promote(ws, candidate("8"), "staging", tracking=RecordingTracking(), gitops=remote)
    after = show(ws, rec.commit_sha, "environments/staging/tiny/inferenceservice.yaml") + "\n"
    golden("hand-edited-isvc.after.yaml", after)
    for line in hand.splitlines():
        if line.strip().startswith("#"):
            assert line in after, f"comment lost: {line}"
    assert "team: growth" in after and "serviceAccountName: churn-reader" in after


def test_concurrent_promotions_of_different_models_both_land(ws, tmp_path):
    remote = gitops_for(ws)
    tracking = RecordingTracking()
    promote(ws, candidate("1"), "staging", tracking=tracking, gitops=remote)
    with remote.checkout() as ours:
        # meanwhile another promotion (another model) lands on the remote
        promote(ws, candidate("1", model="other"), "staging", tracking=tracking, gitops=remote)
        sha = ours.commit_and_push({"environments/staging/tiny/notes.txt": b"ours\n"}, "ours\n")
    log = git(Path(ws.gitops_remote), "log", "--format=%s", "main").splitlines()
    assert log == ["ours", "promote other v1 to staging", "promote tiny v1 to staging"]
    assert git(Path(ws.gitops_remote), "rev-list", "--merges", "--count", "main") == "0"
    assert git(Path(ws.gitops_remote), "rev-parse", "main") == sha


def test_concurrent_edit_of_the_same_file_is_a_clear_conflict(ws):
    remote = gitops_for(ws)
    tracking = RecordingTracking()
    promote(ws, candidate("1"), "staging", tracking=tracking, gitops=remote)
    path = "environments/staging/tiny/inferenceservice.yaml"
    with remote.checkout() as ours:
        promote(ws, candidate("2"), "staging", tracking=tracking, gitops=remote)
        with pytest.raises(PushConflict, match=f"GitOps conflict in {path}"):
            ours.commit_and_push({path: b"kind: Something\n"}, "stale change\n")
    # the other promotion is intact; nothing was overwritten
    assert "m-2" in show(ws, "main", path)


def test_unreachable_remote_is_a_clear_error(tiny_repo, tmp_path):
    remote = GitRemote(url=str(tmp_path / "missing.git"), branch="main", author=("a", "a@b"))
    from mlops_ci.errors import BackendError

    with pytest.raises(BackendError, match="cannot clone GitOps repository"):
        with remote.checkout():
            pass


def test_writes_outside_the_checkout_are_refused(ws):
    from mlops_ci.errors import BackendError

    remote = gitops_for(ws)
    with remote.checkout() as co, pytest.raises(BackendError, match="outside the GitOps checkout"):
        co.commit_and_push({"../escape.yaml": b"x"}, "nope\n")


def push_hand_edited(ws, tmp_path, text: str, path: str = "environments/staging/tiny/inferenceservice.yaml") -> str:
    """A GitOps repository whose ``path`` someone wrote by hand; returns the branch tip."""
    clone = tmp_path / "clone"
    gitops_for(ws).ensure_exists()
    git(tmp_path, "clone", "--quiet", ws.gitops_remote, str(clone))
    target = clone / path
    target.parent.mkdir(parents=True)
    target.write_text(text)
    git(clone, "checkout", "--quiet", "-b", "main")
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "hand-written manifest")
    git(clone, "push", "--quiet", "origin", "main")
    return git(Path(ws.gitops_remote), "rev-parse", "main")


def test_an_invalid_manifest_is_never_committed(ws, tmp_path):
    """A hand-edited field the round trip keeps makes the manifest invalid: the promotion stops
    before committing, naming the file and the fields, in a dry run too."""
    hand = (GOLDEN / "hand-edited-isvc.yaml").read_text()
    hand = hand.replace("    minReplicas: 1\n", "    minReplicas: 1\n    timeout: 30s  # seconds, by hand\n")
    hand += "      resources:\n        limits:\n          ephemeral-storage: 10 GB\n"
    tip = push_hand_edited(ws, tmp_path, hand)
    tracking = RecordingTracking()
    path = "environments/staging/tiny/inferenceservice.yaml"
    for dry_run in (True, False):
        with pytest.raises(PromotionError) as err:
            promote(ws, candidate("8"), "staging", tracking=tracking, gitops=gitops_for(ws), dry_run=dry_run)
        message = str(err.value)
        assert "nothing was committed" in message
        assert f"{path}: InferenceService/tiny: spec.predictor.timeout: '30s' is not of type 'integer' [crd]" \
            in message, message
        assert (f"{path}: InferenceService/tiny: spec.predictor.model.resources.limits.ephemeral-storage: "
                "'10 GB' does not match") in message, message
    assert git(Path(ws.gitops_remote), "rev-parse", "main") == tip, "the remote branch moved"
    assert tracking.aliases == {} and tracking.tags == {}


def test_a_change_of_kind_replaces_the_inferenceservice(ws, tmp_path):
    tracking = RecordingTracking()
    promote(ws, candidate("1"), "staging", tracking=tracking, gitops=gitops_for(ws))
    config = ws.loaded.path
    config.write_text(config.read_text().replace("    serving:\n", "    serving:\n      kind: deployment\n"
                                                 "      image: ghcr.io/acme/server@sha256:" + "a" * 64 + "\n"
                                                 "      gpus: 1\n", 1))
    moved = Workspace.from_config(load_config(config), env=ws.env)
    rec = promote(moved, candidate("2"), "staging", tracking=tracking, gitops=gitops_for(moved))
    folder = "environments/staging/tiny/"
    actions = {c.path.removeprefix(folder): c.action for c in rec.changes if c.action != "unchanged"}
    assert actions == {"inferenceservice.yaml": "delete", "deployment.yaml": "create", "service.yaml": "create",
                       "hpa.yaml": "create", "kustomization.yaml": "modify"}
    kust = yamlio.load(show(ws, rec.commit_sha, folder + "kustomization.yaml"))
    assert kust["resources"] == ["deployment.yaml", "service.yaml", "hpa.yaml"]
    dep = yamlio.load(show(ws, rec.commit_sha, folder + "deployment.yaml"))
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert {"name": "MODEL_URI", "value": "s3://models/tiny/m-2/artifacts"} in container["env"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    files = git(Path(ws.gitops_remote), "ls-tree", "-r", "--name-only", "main").split()
    assert folder + "inferenceservice.yaml" not in files
    again = promote(moved, candidate("3"), "staging", tracking=tracking, gitops=gitops_for(moved))
    assert [c.path for c in again.changes if c.action != "unchanged"] == [folder + "deployment.yaml"]


def test_scale_to_zero_in_serverless_reaches_the_manifest(ws):
    config = ws.loaded.path
    config.write_text(config.read_text().replace("    serving:\n", "    serving:\n"
                                                 "      deployment_mode: Serverless\n      min_replicas: 0\n"
                                                 "      max_replicas: 3\n      canary_percent: 25\n", 1))
    served = Workspace.from_config(load_config(config), env=ws.env)
    rec = promote(served, candidate("4"), "staging", tracking=RecordingTracking(), gitops=gitops_for(served))
    isvc = yamlio.load(show(ws, rec.commit_sha, "environments/staging/tiny/inferenceservice.yaml"))
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    assert (isvc["spec"]["predictor"]["minReplicas"], isvc["spec"]["predictor"]["canaryTrafficPercent"]) == (0, 25)


HOSTILE = ["../../etc", "a: b", "*x", "{x}", "tiny/../other"]


@pytest.mark.parametrize("model", HOSTILE)
def test_hostile_model_names_are_refused_before_any_path_is_built(ws, model, capsys):
    tracking = RecordingTracking()
    with pytest.raises(UsageError, match="is not defined in"):
        promote(ws, candidate("1", model=model), "staging", tracking=tracking, gitops=gitops_for(ws))
    with pytest.raises(UsageError, match="is not defined in"):  # failed gates are not what stops it
        promote(ws, candidate("1", model=model, passed=False), "staging", tracking=tracking, gitops=gitops_for(ws))
    assert main(["promote", "--config", str(ws.loaded.path), "--model", model, "--env", "staging",
                 "--version", "1", "--dry-run"]) == ExitCode.USAGE
    assert "is not defined in" in capsys.readouterr().err
    assert not Path(ws.gitops_remote).exists() and tracking.aliases == {}


@pytest.mark.parametrize("model", HOSTILE)
def test_hostile_model_names_are_refused_in_the_config(tmp_path, model):
    text = (Path(__file__).resolve().parents[1] / "fixtures" / "tiny" / ".mlops-ci.yaml").read_text()
    path = tmp_path / ".mlops-ci.yaml"
    quoted = "'" + model.replace("'", "''") + "'"
    path.write_text(text.replace("  tiny:\n", f"  {quoted}:\n"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    line = text.splitlines().index("  tiny:") + 1
    assert f"{path}:{line}:" in str(err.value) and "is not a valid name" in str(err.value), str(err.value)


def test_a_hand_commented_overlay_keeps_every_comment(ws, tmp_path):
    """A golden test: promoting a new model into an environment whose overlay (kustomization.yaml)
    was written and commented by hand appends one resource line and keeps every comment byte for
    byte (head comment, comments between keys and list items, end-of-line and trailing ones)."""
    remote = gitops_for(ws)
    promote(ws, candidate("1", model="other"), "staging", tracking=RecordingTracking(), gitops=remote)
    hand = (GOLDEN / "hand-commented-overlay.yaml").read_text()
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", ws.gitops_remote, str(clone))
    (clone / "environments/staging/kustomization.yaml").write_text(hand)
    git(clone, "commit", "--quiet", "-am", "hand-written overlay")
    git(clone, "push", "--quiet", "origin", "main")

    rec = promote(ws, candidate("4"), "staging", tracking=RecordingTracking(), gitops=remote)
    after = show(ws, rec.commit_sha, "environments/staging/kustomization.yaml") + "\n"
    golden("hand-commented-overlay.after.yaml", after)
    comments = [line for line in hand.splitlines() if "#" in line]
    assert comments and all(line in after.splitlines() for line in comments), "a comment was lost or moved"
    added = [line for line in after.splitlines() if line not in hand.splitlines()]
    assert added == ["- tiny"], added

"""Rollback against a real git GitOps repository and the real embedded MLflow registry (SQLite).

Registered versions are cheap: a few bytes of "model" registered from a folder, in one
registry built once per module and copied into each test's workspace.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import git
from mlops_ci.backends.gitops import gitops_for
from mlops_ci.backends.tracking import tracking_for
from mlops_ci.cli.main import main
from mlops_ci.config import load_config
from mlops_ci.errors import ExitCode, PromotionError, UsageError
from mlops_ci.serving import hold, yamlio
from mlops_ci.stages.candidate import candidate_from_registry
from mlops_ci.stages.promote import promote
from mlops_ci.stages.register import EVALUATION_TAG
from mlops_ci.stages.rollback import clear_hold, rollback
from mlops_ci.workspace import Workspace
from registry import build_registry

ISVC = "environments/staging/tiny/inferenceservice.yaml"
KUST = "environments/staging/tiny/kustomization.yaml"
HOLD = "environments/staging/tiny/.mlops-ci-hold.yaml"


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    """An MLflow SQLite registry holding tiny v1..v4 (v4 without a passing evaluation)."""
    return build_registry(tmp_path_factory.mktemp("registry"), 4, lambda n: {
        "mlops_ci.head_sha": "c" * 40, **({EVALUATION_TAG: "pass"} if n < 4 else {})})


@pytest.fixture
def ws(tiny_repo, registry) -> Workspace:
    (tiny_repo / ".mlops-ci").mkdir()
    shutil.copy(registry, tiny_repo / ".mlops-ci" / "mlflow.db")
    return Workspace.from_config(load_config(tiny_repo / ".mlops-ci.yaml"), env={})


@pytest.fixture
def tracking(ws):
    return tracking_for(ws)


def remote(ws: Workspace) -> Path:
    return Path(ws.gitops_remote)


def show(ws: Workspace, rev: str, path: str) -> bytes | None:
    import subprocess

    proc = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=remote(ws), capture_output=True)
    return proc.stdout if proc.returncode == 0 else None


def head(ws: Workspace) -> str:
    return git(remote(ws), "rev-parse", "main")


def trailers(ws: Workspace, rev: str = "main") -> dict[str, str]:
    text = git(remote(ws), "log", "-1", "--format=%(trailers:only,unfold)", rev)
    return dict(line.split(": ", 1) for line in text.splitlines() if line)


def promote_version(ws, tracking, version: str, **kwargs):
    return promote(ws, candidate_from_registry(tracking, "tiny", version), "staging", tracking=tracking,
                   gitops=gitops_for(ws), **kwargs)


def alias(tracking) -> str:
    return tracking.version_by_alias("tiny", "staging").version


def test_rollback_restores_the_previous_bytes_moves_the_alias_and_holds(ws, tracking):
    v1 = promote_version(ws, tracking, "1")
    before = {p: show(ws, v1.commit_sha, p) for p in (ISVC, KUST, "environments/staging/kustomization.yaml")}
    v2 = promote_version(ws, tracking, "2")
    assert alias(tracking) == "2" and show(ws, "main", ISVC) != before[ISVC]

    rec = rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws), reason="p99 latency\ndoubled",
                   actor="alice")
    assert rec.action == "revert" and rec.version == "1" and rec.rollback_of == "2"
    assert rec.reverted_commits == [v2.commit_sha] and rec.commit_sha == head(ws) and rec.gates_passed
    for path, data in before.items():
        assert show(ws, "main", path) == data, f"{path} is not byte-for-byte what v1 committed"
    assert alias(tracking) == "1"
    assert tracking.get_version("tiny", "1").tags["mlops_ci.deployed.staging"] == rec.commit_sha

    assert trailers(ws) == {"Model": "tiny", "Model-Version": "1", "Environment": "staging", "MLflow-Alias": "staging",
                            "Model-Digest": "sha256:" + "1" * 64, "Rollback-Of": "2", "Reverts": v2.commit_sha,
                            "Reason": "p99 latency doubled", "Held-By": "alice"}
    assert git(remote(ws), "log", "-1", "--format=%s").startswith("rollback tiny to v1 in staging (from v2)")
    changed = git(remote(ws), "show", "--name-only", "--format=", "main").splitlines()
    assert sorted(changed) == sorted([ISVC, HOLD])

    marker = show(ws, "main", HOLD)
    assert b"mlops-ci rollback --clear-hold --model tiny --env staging" in marker
    held = hold.parse(marker)
    assert (held.model, held.env, held.version, held.rollback_of, held.held_by, held.reason) == \
        ("tiny", "staging", "1", "2", "alice", "p99 latency doubled")
    assert held.held_at.endswith("+00:00")


def test_hold_refuses_automatic_promotion_until_cleared(ws, tracking):
    promote_version(ws, tracking, "1")
    promote_version(ws, tracking, "2")
    rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws), reason="bad", actor="alice")
    held_at = head(ws)

    with pytest.raises(PromotionError, match=f"tiny is on hold in staging .v1 held by alice.*{HOLD}") as err:
        promote_version(ws, tracking, "3")
    assert "mlops-ci rollback --clear-hold --model tiny --env staging" in str(err.value)
    assert err.value.exit_code == ExitCode.INPUT
    plan = promote_version(ws, tracking, "3", dry_run=True)  # the pull-request deployment plan still renders
    assert plan.on_hold == HOLD and plan.forced_reason is None
    assert head(ws) == held_at and alias(tracking) == "1"

    plan = clear_hold(ws, "tiny", "staging", gitops=gitops_for(ws), actor="bob", dry_run=True)
    assert plan.changes[0].action == "delete" and head(ws) == held_at
    cleared = clear_hold(ws, "tiny", "staging", gitops=gitops_for(ws), reason="fixed in #13", actor="bob")
    assert show(ws, "main", HOLD) is None and cleared.commit_sha == head(ws) and cleared.version == "1"
    assert trailers(ws) == {"Model": "tiny", "Environment": "staging", "Hold-Released": "1",
                            "Reason": "fixed in #13", "Released-By": "bob"}
    with pytest.raises(PromotionError, match="tiny is not on hold in staging"):
        clear_hold(ws, "tiny", "staging", gitops=gitops_for(ws))

    rec = promote_version(ws, tracking, "3")
    assert rec.on_hold is None and alias(tracking) == "3"
    assert yamlio.load(show(ws, "main", ISVC))["metadata"]["labels"]["mlops-ci.dev/model-version"] == "3"


def test_forced_promotion_overrides_the_hold_once_and_records_it(ws, tracking):
    promote_version(ws, tracking, "1")
    promote_version(ws, tracking, "2")
    rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws), actor="alice")
    rec = promote_version(ws, tracking, "3", force_reason="hotfix for incident 7")
    assert rec.on_hold == HOLD and rec.forced_reason == "hotfix for incident 7"
    assert trailers(ws)["Hold-Overridden"] == HOLD
    assert show(ws, "main", HOLD) is not None  # the hold stays until it is cleared
    with pytest.raises(PromotionError, match="on hold"):
        promote_version(ws, tracking, "2")


def test_to_version_repins_a_registry_version_even_without_passing_gates(ws, tracking):
    for v in ("1", "2", "3"):
        promote_version(ws, tracking, v)
    rec = rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws), to="1", actor="alice")
    assert rec.action == "re-pin" and rec.version == "1" and rec.rollback_of == "3" and rec.reverted_commits == []
    isvc = yamlio.load(show(ws, "main", ISVC))
    assert isvc["spec"]["predictor"]["model"]["storageUri"].endswith("/m-1")
    assert isvc["metadata"]["annotations"]["mlops-ci.dev/rollback-of"] == "3"
    assert alias(tracking) == "1" and trailers(ws)["Rollback-Of"] == "3" and "Reverts" not in trailers(ws)

    rec = rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws), to="4", reason="known good",
                   actor="alice")
    assert rec.version == "4" and rec.gates_passed is False and alias(tracking) == "4"
    assert hold.parse(show(ws, "main", HOLD)).version == "4"

    again = rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws), to="4", actor="alice")
    assert again.noop and again.commit_sha == head(ws)  # re-running it only moves the alias


def test_a_second_rollback_reverts_the_first(ws, tracking):
    for v in ("1", "2", "3"):
        promote_version(ws, tracking, v)
    v3_isvc = show(ws, "main", ISVC)
    first = rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws), actor="a")
    assert (first.rollback_of, first.version) == ("3", "2")
    second = rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws), actor="a")
    assert (second.rollback_of, second.version) == ("2", "3") and second.reverted_commits == [first.commit_sha]
    assert show(ws, "main", ISVC) == v3_isvc and alias(tracking) == "3"


def test_no_previous_version_is_a_clear_error(ws, tracking):
    with pytest.raises(PromotionError, match="no promotion of tiny to staging in the history"):
        rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws))
    v1 = promote_version(ws, tracking, "1")
    with pytest.raises(PromotionError, match=f"tiny has no version before v1 in staging: {v1.commit_sha[:12]}") as err:
        rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws))
    assert err.value.exit_code == ExitCode.INPUT and "--to VERSION" in str(err.value)
    with pytest.raises(PromotionError, match="already serves tiny v1"):
        rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws), to="1")
    assert head(ws) == v1.commit_sha and alias(tracking) == "1"


def test_later_edits_to_the_same_files_stop_an_exact_revert(ws, tracking, tmp_path):
    promote_version(ws, tracking, "1")
    v2 = promote_version(ws, tracking, "2")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", ws.gitops_remote, str(clone))
    (clone / ISVC).write_text("# owned by team growth\n" + (clone / ISVC).read_text())
    git(clone, "commit", "--quiet", "-am", "annotate the manifest")
    git(clone, "push", "--quiet", "origin", "main")
    edit = head(ws)
    with pytest.raises(PromotionError, match=f"cannot restore {ISVC}.*{v2.commit_sha[:12]}.*"
                                             f"{edit[:12]} 'annotate the manifest'.*--to 1"):
        rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws))
    assert head(ws) == edit and alias(tracking) == "2"
    rec = rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws), to="1")
    after = show(ws, "main", ISVC).decode()
    assert after.startswith("# owned by team growth\n") and rec.version == "1"
    assert yamlio.load(after)["spec"]["predictor"]["model"]["storageUri"].endswith("/m-1")


def test_dry_run_prints_the_diff_and_changes_nothing(ws, tracking):
    promote_version(ws, tracking, "1")
    promote_version(ws, tracking, "2")
    before = head(ws)
    plan = rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops_for(ws), dry_run=True, actor="alice")
    assert plan.dry_run and plan.commit_sha is None and plan.base_commit == before
    changed = {c.path: c for c in plan.changes if c.action != "unchanged"}
    assert changed[ISVC].action == "modify" and changed[HOLD].action == "create"
    assert "-      storageUri: " in changed[ISVC].diff and "/m-2\n" in changed[ISVC].diff
    assert "+held_by: alice" in changed[HOLD].diff
    assert head(ws) == before and alias(tracking) == "2" and show(ws, "main", HOLD) is None


@pytest.mark.parametrize("model, env", [("../../etc", "staging"), ("a: b", "staging"), ("tiny", "../prod")])
def test_hostile_names_are_refused_before_any_path_is_built(ws, tracking, model, env):
    with pytest.raises(UsageError, match="is not defined in"):
        rollback(ws, model, env, tracking=tracking, gitops=gitops_for(ws), to="1")
    with pytest.raises(UsageError, match="is not defined in"):
        clear_hold(ws, model, env, gitops=gitops_for(ws))
    assert not Path(ws.gitops_remote).exists()


def test_cli_dry_run_rollback_and_clear_hold(ws, tracking, monkeypatch, capsys):
    promote_version(ws, tracking, "1")
    promote_version(ws, tracking, "2")
    before = head(ws)
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    base = ["rollback", "--config", str(ws.loaded.path), "--model", "tiny", "--env", "staging"]

    assert main([*base, "--dry-run"]) == ExitCode.USAGE  # the hold it would write needs its reason too
    assert main([*base, "--dry-run", "--reason", "bad canary"]) == 0
    out = capsys.readouterr().out
    assert "dry run: rolling back tiny in staging from v2 to v1" in out and "+held_by: octocat" in out
    assert head(ws) == before

    monkeypatch.setenv("MLOPS_CI_REASON", "bad canary")  # how the workflows pass free text
    assert main(base) == 0
    assert "rolled back tiny in staging from v2 to v1" in capsys.readouterr().out
    assert trailers(ws)["Held-By"] == "octocat" and trailers(ws)["Reason"] == "bad canary"
    assert alias(tracking) == "1"

    assert main(["promote", "--config", str(ws.loaded.path), "--model", "tiny", "--env", "staging",
                 "--version", "3"]) == ExitCode.INPUT
    assert HOLD in capsys.readouterr().err

    assert main([*base, "--clear-hold"]) == 0
    assert "released the hold" in capsys.readouterr().out and show(ws, "main", HOLD) is None
    assert main([*base[:4], "../../etc", "--env", "staging"]) == ExitCode.USAGE


def test_cli_rollback_needs_a_reason_and_a_held_dry_run_promote_is_refused_first(ws, tracking, monkeypatch, capsys):
    promote_version(ws, tracking, "1")
    promote_version(ws, tracking, "2")
    monkeypatch.delenv("MLOPS_CI_REASON", raising=False)
    base = ["rollback", "--config", str(ws.loaded.path), "--model", "tiny", "--env", "staging"]
    assert main(base) == ExitCode.USAGE and "needs a reason: --reason TEXT" in capsys.readouterr().err
    assert main([*base, "--reason", "v2 regressed"]) == 0
    capsys.readouterr()
    promote_args = ["promote", "--config", str(ws.loaded.path), "--model", "tiny", "--env", "staging"]
    assert main([*promote_args, "--version", "3", "--dry-run"]) == ExitCode.INPUT  # as the real one would be
    out = capsys.readouterr().out
    assert out.startswith(f"refused: {HOLD} holds tiny in staging") and "+      storageUri" in out
    assert main([*promote_args, "--version", "99", "--dry-run"]) == ExitCode.INPUT  # unknown: unusable input
    assert "tiny v99 does not exist" in capsys.readouterr().err

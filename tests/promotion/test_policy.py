"""The one policy evaluator: each rule on its own, and a new rule added in the test routes through
every path that changes what an environment serves (promote from the CLI, a dry run, rollback,
clearing a hold, a declared entry), against a real git GitOps repository and MLflow on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import commit, git
from registry import passing_registry_workspace

from mlops_ci import policy
from mlops_ci.backends.gitops import gitops_for
from mlops_ci.backends.tracking import tracking_for
from mlops_ci.cli.main import main
from mlops_ci.errors import ExitCode, GateFailed, PromotionError, UsageError
from mlops_ci.policy import Facts, Intent, Reason, evaluate
from mlops_ci.stages.rollback import clear_hold, rollback
from mlops_ci.workspace import Workspace

HOLD = "environments/staging/tiny/.mlops-ci-hold.yaml"


def promote_intent(**kwargs) -> Intent:
    return Intent("promote", "tiny", "staging", version="3", **kwargs)


# -- each rule -------------------------------------------------------------------------------------------
def test_a_clean_promotion_is_allowed_and_pushed():
    d = evaluate(promote_intent(), Facts())
    assert d.allowed and d.via == "push" and [r.rule for r in d.reasons] == ["via"]


def test_failed_gates_refuse_unless_forced_and_the_force_is_recorded():
    facts = Facts(gates_passed=False, gate_summary="roc_auc 0.51 < min 0.6")
    d = evaluate(promote_intent(), facts)
    assert not d.allowed and isinstance(d.error(), GateFailed)
    assert str(d.error()) == ("tiny v3 did not pass its gates (roc_auc 0.51 < min 0.6) (fix the model, or pass "
                              "--force --reason TEXT to promote anyway (recorded))")
    forced = evaluate(promote_intent(force_reason="incident 7"), facts)
    assert forced.allowed and forced.overrode("gates")
    assert evaluate(Intent("rollback", "tiny", "staging", version="3"), facts).allowed  # restores what was served


def test_an_unregistered_candidate_needs_force_and_a_reason():
    facts = Facts(registered=False, gates_passed=False, gate_summary="NaN", run_id="r1")
    assert isinstance(evaluate(promote_intent(), facts).error(), GateFailed)
    assert evaluate(promote_intent(force_reason="x"), facts).overrode("registered")
    empty = evaluate(promote_intent(force_reason="  "), Facts())
    assert isinstance(empty.error(), UsageError) and "non-empty --reason" in str(empty.error())


def test_a_hold_refuses_a_promotion_a_dry_run_plans_past_it_and_force_goes_past_once():
    facts = Facts(hold_path=HOLD, hold_text="v1 held by alice", remote="gitops.git (main)")
    d = evaluate(promote_intent(), facts)
    assert [r.rule for r in d.blocking] == ["hold"] and isinstance(d.error(), PromotionError)
    assert "tiny is on hold in staging (v1 held by alice)" in str(d.error())
    with pytest.raises(PromotionError):
        d.enforce()
    evaluate(promote_intent(dry_run=True), facts).enforce()  # plans, marked
    assert evaluate(promote_intent(force_reason="hotfix"), facts).overrode("hold")
    declared = promote_intent(force_reason="reviewed", overrides=frozenset({"gates"}))
    assert not evaluate(declared, facts).allowed  # an entry's reason overrides gates, never a hold
    assert evaluate(Intent("rollback", "tiny", "staging"), facts).allowed


def test_merged_only_is_never_lifted_by_force():
    facts = Facts(unmerged=("the run record is for commit abc, which is not merged into main", "merge it"))
    assert not evaluate(promote_intent(force_reason="x"), facts).allowed
    assert evaluate(promote_intent(allow_unmerged=True), facts).allowed


def test_via_follows_the_flag_else_the_environment():
    assert evaluate(promote_intent(), Facts(configured_via="pull_request")).via == "pull_request"
    assert evaluate(promote_intent(via="push"), Facts(configured_via="pull_request")).via == "push"
    assert evaluate(Intent("rollback", "tiny", "prod"), Facts(configured_via="pull_request")).via == "push"


def test_rules_run_in_order_and_the_first_refusal_is_raised():
    facts = Facts(unmerged=("not merged", "merge"), gates_passed=False, hold_path=HOLD)
    d = evaluate(promote_intent(), facts)
    assert [r.rule for r in d.blocking] == ["merged", "gates", "hold"] and str(d.error()) == "not merged (merge)"


# -- a new rule routes through every path ------------------------------------------------------------------
@pytest.fixture
def ws(tiny_repo, tmp_path_factory) -> Workspace:
    return passing_registry_workspace(tiny_repo, tmp_path_factory.mktemp("registry"))


OPENS = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def freeze(intent: Intent, facts: Facts):
    """A change freeze over staging until a fixed time: clears by itself then."""
    if intent.env == "staging" and intent.action in ("promote", "rollback"):
        yield Reason("freeze", f"{intent.env} is frozen for the release", blocks=True,
                     hint="wait, or promote elsewhere", not_before=OPENS)


def cli(ws: Workspace, *args: str) -> int:
    return main([args[0], "--config", str(ws.loaded.path), *args[1:]])


def test_a_new_rule_is_asked_by_promote_rollback_and_declared(ws, monkeypatch, capsys):
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "1") == 0
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "2") == 0
    capsys.readouterr()
    monkeypatch.setattr(policy, "RULES", [*policy.RULES, freeze])

    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "3") == ExitCode.INPUT
    err = capsys.readouterr().err
    assert "staging is frozen for the release (not before 2026-12-07T06:00+00:00)" in err
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "3", "--dry-run") == ExitCode.INPUT
    assert "frozen" in capsys.readouterr().err  # refused outright: not a rule a dry run plans past
    with pytest.raises(PromotionError, match="frozen"):
        rollback(ws, "tiny", "staging", tracking=tracking_for(ws), gitops=gitops_for(ws), reason="r", actor="a")

    (ws.top / ".mlops-ci.promotions.yaml").write_text("version: 1\nenvironments:\n  staging: {tiny: 3}\n")
    commit(ws.top, "declare v3")
    assert cli(ws, "promote", "--declared") == 1
    assert "refused: .mlops-ci.promotions.yaml" in capsys.readouterr().err

    monkeypatch.setattr(policy, "RULES", [r for r in policy.RULES if r is not freeze])
    assert cli(ws, "promote", "--declared") == 0
    assert tracking_for(ws).version_by_alias("tiny", "staging").version == "3"
    assert git(Path(ws.gitops_remote), "log", "-1", "--format=%s", "main") == "promote tiny v3 to staging"


def test_clearing_a_hold_asks_the_policy_too(ws, monkeypatch):
    tracking, gitops = tracking_for(ws), gitops_for(ws)
    for version in ("1", "2"):
        assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", version) == 0
    rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops, reason="bad", actor="alice")
    asked = []

    def record(intent: Intent, facts: Facts):
        asked.append((intent.action, facts.hold_path))
        return ()

    monkeypatch.setattr(policy, "RULES", [*policy.RULES, record])
    clear_hold(ws, "tiny", "staging", gitops=gitops, reason="fixed", actor="bob", dry_run=True)
    assert asked == [("clear-hold", HOLD)]


def test_not_before_is_shown_to_the_minute():
    """A rule's clearing time is shown to the minute, in UTC, rounded up: a time shown as "not before"
    has not passed yet when it is shown; several refusals are all named."""
    r = Reason("freeze", "frozen", blocks=True, not_before=OPENS + timedelta(seconds=59))
    assert str(policy.Decision(promote_intent(), (r,)).error()) == "frozen (not before 2026-12-07T06:01+00:00)"
    exact = Reason("freeze", "frozen", blocks=True, not_before=OPENS)
    assert str(policy.Decision(promote_intent(), (exact,)).error()) == "frozen (not before 2026-12-07T06:00+00:00)"
    later = Reason("order", "soaking", blocks=True, not_before=OPENS + timedelta(days=1))
    decision = policy.Decision(promote_intent(), (exact, later))
    with pytest.raises(PromotionError, match=r"frozen \(not before 2026-12-07T06:00\+00:00\); and soaking "
                                             r"\(not before 2026-12-08T06:00\+00:00\)"):
        decision.enforce()

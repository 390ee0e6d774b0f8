"""Environment order (issue 16's policy): `environments.prod.policy.after: staging` with a `soak`
takes into prod only a version the GitOps history shows served in staging, for at least the soak;
the refusal says when it clears; --force --reason goes past (recorded). Through the real CLI
against a real git GitOps repository and MLflow on SQLite; the config's checks of the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import git
from registry import passing_registry_workspace

from mlops_ci.cli.main import main
from mlops_ci.config import load_config
from mlops_ci.errors import ConfigError, ExitCode
from mlops_ci.policy import Facts, Intent, evaluate
from mlops_ci.workspace import Workspace

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def decide(spans, soak=HOUR, **intent):
    return evaluate(Intent("promote", "tiny", "prod", version="3", **intent),
                    Facts(after="staging", soak=soak, served_after=spans, now=NOW))


def test_the_rule_reads_the_spans_a_version_was_served_in_the_environment_before():
    (never,) = decide(()).blocking
    assert never.rule == "order" and "never served in staging" in never.message and never.not_before is None
    (soaking,) = decide(((NOW - timedelta(minutes=20), None, False),)).blocking
    assert "served in staging for 0h 20m, not yet for 1h 0m" in soaking.message
    assert soaking.not_before == NOW + timedelta(minutes=40) and soaking.shows_plan
    (short,) = decide(((NOW - 3 * HOUR, NOW - 2.5 * HOUR, False),)).blocking
    assert "for 0h 30m at most, not for 1h 0m" in short.message and short.not_before is None
    assert decide(((NOW - 5 * HOUR, NOW - 3 * HOUR, False), (NOW - HOUR / 2, None, False))).allowed  # one soaked
    assert decide(((NOW - timedelta(seconds=1), None, False),), soak=None).allowed  # no soak: served there at all
    (bad,) = decide(((NOW - 5 * HOUR, NOW - 3 * HOUR, True),)).blocking  # soaked, then rolled back out for cause
    assert "was rolled back out of staging" in bad.message and "promote a version that soaked" in bad.hint
    forced = decide((), force_reason="hotfix")
    assert forced.allowed and forced.overrode("order")
    assert evaluate(Intent("rollback", "tiny", "prod", version="2"), Facts(after="staging")).allowed


PROD = "  prod:\n    namespace: tiny-prod\n    policy: {after: staging, soak: 1h}\n"


@pytest.fixture
def ws(tiny_repo, tmp_path_factory) -> Workspace:
    config = tiny_repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace("    namespace: tiny-staging\n",
                                                 "    namespace: tiny-staging\n" + PROD, 1))
    return passing_registry_workspace(tiny_repo, tmp_path_factory.mktemp("registry"))


def cli(ws: Workspace, *args: str) -> int:
    return main([args[0], "--config", str(ws.loaded.path), *args[1:]])


def promote(ws: Workspace, env: str, version: str, *extra: str) -> int:
    return cli(ws, "promote", "--model", "tiny", "--env", env, "--version", version, *extra)


def test_prod_takes_only_what_soaked_in_staging(ws, monkeypatch, capsys):
    assert promote(ws, "prod", "1") == ExitCode.INPUT
    assert "tiny v1 was never served in staging, which prod comes after" in capsys.readouterr().err
    assert promote(ws, "staging", "1") == 0
    assert promote(ws, "prod", "1") == ExitCode.INPUT
    err = capsys.readouterr().err
    assert "tiny v1 has been served in staging for 0h 0m, not yet for 1h 0m (not before " in err
    assert "wait for it to soak in staging" in err
    # v2 reached staging a day ago (its promotion commit is dated so): it has soaked
    monkeypatch.setenv("GIT_COMMITTER_DATE", (datetime.now(UTC) - timedelta(days=1)).isoformat())
    assert promote(ws, "staging", "2") == 0
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    assert promote(ws, "prod", "2") == 0
    assert git(Path(ws.gitops_remote), "log", "-1", "--format=%s", "main") == "promote tiny v2 to prod"
    # v1 was served in staging for only a moment before v2 replaced it
    assert promote(ws, "prod", "1") == ExitCode.INPUT
    assert "was served in staging for" in capsys.readouterr().err
    assert promote(ws, "prod", "3", "--force", "--reason", "security fix, skipping staging") == 0
    text = git(Path(ws.gitops_remote), "log", "-1", "--format=%(trailers:only,unfold)", "main")
    assert "Order-Overridden: tiny v3 was never served in staging" in text
    assert "Forced-Reason: security fix, skipping staging" in text


@pytest.mark.parametrize("policy, message", [
    ("{after: prod}", "prod cannot come after itself"),
    ("{after: qa}", "environment 'qa' is not defined"),
    ("{soak: 1h}", "soak needs after"),
    ("{after: staging, soak: 90s}", "is not a duration"),
])
def test_an_order_that_cannot_hold_is_refused_at_config_load(tiny_repo, policy, message):
    config = tiny_repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace("    namespace: tiny-staging\n", "    namespace: tiny-staging\n"
                                                 f"  prod:\n    namespace: tiny-prod\n    policy: {policy}\n", 1))
    with pytest.raises(ConfigError, match=message):
        load_config(config)


def test_a_loop_in_the_order_is_refused(tiny_repo):
    config = tiny_repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace(
        "    namespace: tiny-staging\n", "    namespace: tiny-staging\n    policy: {after: prod}\n"
        "  prod:\n    namespace: tiny-prod\n    policy: {after: staging}\n", 1))
    with pytest.raises(ConfigError, match="loops back to"):
        load_config(config)


def test_the_pull_request_s_plan_says_which_policy_holds_the_promotion_and_when_it_clears(ws):
    """The plan a pull request's report shows (a dry-run promotion into its on_merge environment)."""
    from mlops_ci.backends.gitops import gitops_for
    from mlops_ci.backends.tracking import tracking_for
    from mlops_ci.render.markdown import Links
    from mlops_ci.render.report import _promotion
    from mlops_ci.stages.candidate import candidate_from_registry
    from mlops_ci.stages.promote import promote as promote_stage

    assert promote(ws, "staging", "1") == 0
    tracking = tracking_for(ws)
    plan = promote_stage(ws, candidate_from_registry(tracking, "tiny", "1"), "prod", tracking=tracking,
                         gitops=gitops_for(ws), dry_run=True)
    (line,) = plan.held_by
    assert line.startswith("tiny v1 has been served in staging for 0h 0m, not yet for 1h 0m: a real promote is "
                           "refused until ")
    text = "\n".join(x for x in _promotion(plan, "Deployment plan", Links()) if isinstance(x, str))
    assert "> ⚠️ tiny v1 has been served in staging" in text and "Alias `prod` moves to v1" in text

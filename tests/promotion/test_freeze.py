"""Freezes (issue 16's first policy rules): the environment's freeze windows in `.mlops-ci.yaml` and a
FREEZE file in its GitOps folder refuse promotions into it, say when they clear, let a dry run plan
past them, and give way to --force --reason (recorded in the commit); rollbacks go on. Through the
real CLI against a real git GitOps repository and MLflow on SQLite."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import git
from pydantic import ValidationError
from registry import passing_registry_workspace

from mlops_ci.cli.main import main
from mlops_ci.config import load_config
from mlops_ci.config.policy import FreezeWindow
from mlops_ci.errors import ExitCode
from mlops_ci.policy import Facts, Intent, evaluate
from mlops_ci.workspace import Workspace


@pytest.mark.parametrize("window, now, until", [
    # Sunday 22:00 to Monday 02:00 in Berlin (UTC+1 in December)
    ({"days": ["sun"], "start": "22:00", "end": "02:00", "timezone": "Europe/Berlin"}, "2026-12-06T21:30Z", "2026-12-07T01:00Z"),
    ({"days": ["sun"], "start": "22:00", "end": "02:00", "timezone": "Europe/Berlin"}, "2026-12-07T00:30Z", "2026-12-07T01:00Z"),
    ({"days": ["sun"], "start": "22:00", "end": "02:00", "timezone": "Europe/Berlin"}, "2026-12-07T01:00Z", None),
    ({"days": ["sun"], "start": "22:00", "end": "02:00", "timezone": "Europe/Berlin"}, "2026-12-06T20:59Z", None),
    ({"days": ["mon", "fri"], "start": "09:00", "end": "17:00"}, "2026-12-11T16:59Z", "2026-12-11T17:00Z"),
    ({"days": ["mon", "fri"], "start": "09:00", "end": "17:00"}, "2026-12-10T12:00Z", None),  # a Thursday
    ({"start": "2026-12-21T00:00:00Z", "end": "2027-01-04T00:00:00+01:00"}, "2027-01-03T22:59Z", "2027-01-03T23:00Z"),
    ({"start": "2026-12-21T00:00:00Z", "end": "2027-01-04T00:00:00+01:00"}, "2026-12-20T23:59Z", None),
])
def test_a_window_holds_from_its_start_to_its_end(window, now, until):
    got = FreezeWindow(**window).holds_until(datetime.fromisoformat(now))
    assert (got and got.astimezone(UTC)) == (until and datetime.fromisoformat(until))


@pytest.mark.parametrize("window, message", [
    ({"days": ["sun"], "start": "22", "end": "02:00"}, "not a time of day HH:MM"),
    ({"days": ["sunday"], "start": "22:00", "end": "02:00"}, "days"),
    ({"days": ["sun"], "start": "22:00", "end": "02:00", "timezone": "Mars/Olympus"}, "not an IANA time zone"),
    ({"start": "2026-12-21T00:00:00", "end": "2027-01-04T00:00:00Z"}, "has no offset"),
    ({"start": "2027-01-04T00:00:00Z", "end": "2026-12-21T00:00:00Z"}, "must end after it starts"),
])
def test_a_window_that_cannot_be_read_is_refused_at_config_load(window, message):
    with pytest.raises(ValidationError, match=message):
        FreezeWindow(**window)


def test_the_rule_refuses_promotions_says_when_it_clears_and_gives_way_to_a_reason():
    ends = datetime(2027, 1, 4, tzinfo=UTC)
    window = (("freeze window holidays", ends),)
    refused = evaluate(Intent("promote", "tiny", "prod", version="3"), Facts(freezes=window))
    (reason,) = refused.blocking
    assert reason.rule == "freeze" and reason.not_before == ends and reason.shows_plan
    by_file = evaluate(Intent("promote", "tiny", "prod", version="3"), Facts(freezes=(*window, ("FREEZE", None))))
    assert by_file.blocking[0].not_before is None and "remove the FREEZE file" in by_file.blocking[0].hint
    forced = evaluate(Intent("promote", "tiny", "prod", version="3", force_reason="incident 7"), Facts(freezes=window))
    assert forced.allowed and forced.overrode("freeze")
    declared = evaluate(Intent("promote", "tiny", "prod", version="3", force_reason="r", overrides=frozenset({"gates"})),
                        Facts(freezes=window))
    assert not declared.allowed  # a declared entry's reason goes past the gates, never a freeze
    assert evaluate(Intent("rollback", "tiny", "prod", version="2"), Facts(freezes=window)).allowed


@pytest.fixture
def ws(tiny_repo, tmp_path_factory) -> Workspace:
    return passing_registry_workspace(tiny_repo, tmp_path_factory.mktemp("registry"))


def cli(ws: Workspace, *args: str) -> int:
    return main([args[0], "--config", str(ws.loaded.path), *args[1:]])


def freeze_staging(ws: Workspace, window: str) -> None:
    path = ws.loaded.path
    path.write_text(path.read_text().replace("    namespace: tiny-staging\n", "    namespace: tiny-staging\n"
                                             f"    policy:\n      freeze:\n        - {window}\n", 1))


def trailers(ws: Workspace) -> dict[str, str]:
    text = git(Path(ws.gitops_remote), "log", "-1", "--format=%(trailers:only,unfold)", "main")
    return dict(line.split(": ", 1) for line in text.splitlines() if line)


def test_a_freeze_window_refuses_a_promotion_until_it_clears(ws, capsys):
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "1") == 0
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "2") == 0
    freeze_staging(ws, '{start: "2000-01-01T00:00:00Z", end: "2100-01-01T00:00:00Z", reason: release}')
    capsys.readouterr()
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "3") == ExitCode.INPUT
    err = capsys.readouterr().err
    assert "staging is frozen: freeze window 2000-01-01T00:00:00Z to 2100-01-01T00:00:00Z (release)" in err
    assert "not before 2100-01-01T00:00+00:00" in err and "--force --reason" in err
    # a dry run (a pull request's plan) still renders the change, and says what holds it and until when
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "3", "--dry-run") == ExitCode.INPUT
    out = capsys.readouterr().out
    assert "a real promote is refused until 2100-01-01T00:00+00:00" in out and "+    mlops-ci.dev/model-version: '3'" in out
    assert git(Path(ws.gitops_remote), "log", "-1", "--format=%s", "main") == "promote tiny v2 to staging"
    # a rollback is never stopped by a freeze: it is how a frozen environment gets out of trouble
    assert cli(ws, "rollback", "--model", "tiny", "--env", "staging", "--reason", "v2 misbehaves") == 0
    assert git(Path(ws.gitops_remote), "log", "-1", "--format=%s", "main").startswith("rollback tiny")
    assert cli(ws, "rollback", "--model", "tiny", "--env", "staging", "--clear-hold", "--reason", "fixed") == 0
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "3", "--force",
               "--reason", "incident 7 hotfix") == 0
    assert "forced: staging is frozen (freeze window 2000" in capsys.readouterr().out
    got = trailers(ws)
    assert got["Forced-Reason"] == "incident 7 hotfix" and got["Freeze-Overridden"].startswith("freeze window 2000")


def test_a_freeze_file_in_the_gitops_repository_stops_the_line(ws, tmp_path, capsys):
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "1") == 0
    clone = tmp_path / "gitops"
    subprocess.run(["git", "clone", "-q", str(ws.gitops_remote), str(clone)], check=True)
    folder = clone / ws.config.gitops.path / "staging"
    (folder / "FREEZE").write_text("\nQ4 close: no model changes (ops, #12)\n")
    git(clone, "add", "-A")
    git(clone, "-c", "user.name=ops", "-c", "user.email=ops@example.com", "commit", "-q", "-m", "freeze staging")
    git(clone, "push", "-q", "origin", "HEAD:main")
    capsys.readouterr()
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "2") == ExitCode.INPUT
    err = capsys.readouterr().err
    assert f"{ws.config.gitops.path}/staging/FREEZE exists in the GitOps repository" in err
    assert "Q4 close: no model changes (ops, #12)" in err and "remove the FREEZE file" in err
    git(clone, "rm", "-q", str(folder / "FREEZE"))
    git(clone, "-c", "user.name=ops", "-c", "user.email=ops@example.com", "commit", "-q", "-m", "thaw staging")
    git(clone, "push", "-q", "origin", "HEAD:main")
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "2") == 0


def test_back_to_back_weekly_windows_hold_until_the_last_ends():
    weekend = FreezeWindow(days=["fri", "sat", "sun"], start="00:00", end="00:00", timezone="Europe/Berlin")
    got = weekend.holds_until(datetime.fromisoformat("2026-12-11T12:00Z"))  # a Friday
    assert got.astimezone(UTC) == datetime.fromisoformat("2026-12-13T23:00Z")  # Monday 00:00 in Berlin


def test_an_unquoted_yaml_timestamp_is_a_date_range(tiny_repo):
    config = tiny_repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace("    namespace: tiny-staging\n", "    namespace: tiny-staging\n"
                                                 "    policy:\n      freeze:\n        - {start: 2026-12-01T00:00:00Z, "
                                                 "end: 2027-01-04T00:00:00Z, reason: holidays}\n", 1))
    (window,) = load_config(config).config.environments["staging"].policy.freeze
    assert window.holds_until(datetime.fromisoformat("2026-12-24T18:00Z")) == datetime.fromisoformat("2027-01-04T00:00Z")


def test_a_rollback_to_a_version_the_environment_never_served_is_judged_like_a_promotion(ws, capsys):
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "1") == 0
    assert cli(ws, "promote", "--model", "tiny", "--env", "staging", "--version", "2") == 0
    freeze_staging(ws, '{start: "2000-01-01T00:00:00Z", end: "2100-01-01T00:00:00Z", reason: release}')
    capsys.readouterr()
    assert cli(ws, "rollback", "--model", "tiny", "--env", "staging", "--to", "3", "--reason", "r") == ExitCode.INPUT
    assert "staging is frozen" in capsys.readouterr().err
    assert cli(ws, "rollback", "--model", "tiny", "--env", "staging", "--to", "1", "--reason", "v2 is bad") == 0

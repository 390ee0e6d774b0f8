"""Rollouts through the real CLI against a real git GitOps repository and MLflow on SQLite (issue 16):
a promotion into an environment with `rollout.steps` commits the first canary step; `mlops-ci rollout
status|advance|abort` read the state from the manifest and the history, wait while a step soaks, commit
the next step and the full promotion (the alias moves only then), and abort with the byte-exact
rollback and a hold. Golden manifests for each step, in both KServe modes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONTRACTS, git, golden
from registry import passing_registry_workspace

from mlops_ci.cli.main import main
from mlops_ci.config import load_config
from mlops_ci.errors import ConfigError, ExitCode
from mlops_ci.serving import canary, hold
from mlops_ci.workspace import Workspace

ISVC = "environments/prod/tiny/inferenceservice.yaml"


def prod(mode: str, steps: str = "[{canary: 10, soak: 1h}, {canary: 50, soak: 1h}]", extra: str = "") -> str:
    return (f"  prod:\n    namespace: tiny-prod\n    rollout:\n      steps: {steps}\n      max_soak: 2h\n{extra}")


def workspace(repo: Path, base: Path, mode: str, **kw) -> Workspace:
    config = repo / ".mlops-ci.yaml"
    text = config.read_text().replace("    namespace: tiny-staging\n", "    namespace: tiny-staging\n" + prod(mode, **kw), 1)
    text = text.replace("      check: {enabled: false}\n", f"      check: {{enabled: false}}\n      deployment_mode: {mode}\n", 1)
    config.write_text(text)
    git(repo, "commit", "-qam", "prod rolls out")
    return passing_registry_workspace(repo, base)


def cli(ws: Workspace, *args: str) -> int:
    return main([args[0], "--config", str(ws.loaded.path), *args[1:]])


def promote(ws: Workspace, version: str, *extra: str) -> int:
    return cli(ws, "promote", "--model", "tiny", "--env", "prod", "--version", version, *extra)


def rollout(ws: Workspace, action: str, *extra: str) -> int:
    return cli(ws, "rollout", action, "--model", "tiny", "--env", "prod", *extra)


def remote(ws: Workspace) -> Path:
    return Path(ws.gitops_remote)


def show(ws: Workspace, path: str = ISVC, rev: str = "main") -> str:
    return git(remote(ws), "show", f"{rev}:{path}")


def normal(text: str) -> str:
    """A manifest without what differs between runs: the registry's folder, the source commit, the step's time."""
    import re

    text = re.sub(r"/\S*/registry\d*/models/", "<registry>/models/", text)
    text = re.sub(r"source-commit: [0-9a-f]{40}", "source-commit: <sha>", text)
    return re.sub(r'\\?"started\\?":\\?"[^"\\]+\\?"', '"started":"<time>"', text)


def trailers(ws: Workspace, rev: str = "main") -> dict[str, str]:
    out = git(remote(ws), "log", "-1", "--format=%(trailers:only,unfold)", rev)
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def alias(ws: Workspace) -> str:
    from mlops_ci.pipeline import default_backends

    return default_backends(ws).tracking.version_by_alias("tiny", "prod").version


@pytest.fixture(params=["RawDeployment", "Serverless"])
def ws(request, tiny_repo, tmp_path_factory, monkeypatch) -> Workspace:
    monkeypatch.setenv("MLOPS_CI_CRDS", str(CONTRACTS / "kserve"))  # every step is checked against KServe's CRD
    return workspace(tiny_repo, tmp_path_factory.mktemp("registry"), request.param)


def test_a_promotion_starts_the_rollout_and_advance_takes_each_step_to_the_full_promotion(ws, capsys):
    mode = ws.model("tiny").serving.deployment_mode
    assert promote(ws, "1") == 0  # nothing served yet: the first version is promoted whole
    assert "rollout" not in show(ws) and alias(ws) == "1"
    before = show(ws)
    capsys.readouterr()
    assert promote(ws, "2", "--dry-run") == 0 and show(ws) == before
    assert ("dry run: promoting tiny v2 to prod would start the rollout (step 1/2: v2 takes 10% beside v1), "
            "changing 1 file(s); alias 'prod' moves when it completes") in capsys.readouterr().out
    assert promote(ws, "2") == 0
    assert "step 1/2" in capsys.readouterr().out
    first = show(ws)
    golden(f"rollout-{mode}-step1.yaml", normal(first))
    step = canary.state(first.encode())
    assert (step.version, step.primary, step.step, step.steps, step.canary) == ("2", "1", 1, 2, 10)
    t = trailers(ws)
    assert t["Rollout-Of"] == "2" and t["Rollout-Step"] == "1/2 (10%)" and t["Model-Version"] == "2"
    assert "MLflow-Alias" not in t and alias(ws) == "1"  # the alias moves when the rollout completes
    assert git(remote(ws), "log", "-1", "--format=%s", "main") == "start rollout of tiny v2 in prod: step 1/2"

    assert promote(ws, "2") == 0 and show(ws) == first  # promoting it again: the rollout goes on, no commit
    assert promote(ws, "3") == ExitCode.INPUT
    assert "a rollout of tiny v2 in prod is at step 1/2" in capsys.readouterr().err

    assert rollout(ws, "status") == 0
    out = capsys.readouterr().out
    assert "tiny in prod: wait (step 1/2: v2 takes 10% beside v1): soaking: live for 0m" in out

    assert rollout(ws, "advance", "--force") == ExitCode.USAGE  # forcing needs a reason
    assert rollout(ws, "advance") == 0 and show(ws) == first  # soaking: nothing committed
    assert rollout(ws, "advance", "--force", "--reason", "canary looks fine on the dashboard") == 0
    second = show(ws)
    golden(f"rollout-{mode}-step2.yaml", normal(second))
    assert canary.state(second.encode()).canary == 50 and alias(ws) == "1"
    t = trailers(ws)
    assert t["Rollout-Step"] == "2/2 (50%)" and "forced (canary looks fine" in t["Analysis"]

    assert rollout(ws, "advance", "--force", "--reason", "all good") == 0
    done = show(ws)
    golden(f"rollout-{mode}-complete.yaml", normal(done))
    assert canary.state(done.encode()) is None and "canary" not in done.replace("canary_percent", "")
    assert alias(ws) == "2" and trailers(ws)["Rollout-Step"] == "complete"
    assert "completed: v2 serves all of prod" in capsys.readouterr().out
    # the full promotion is what promoting v2 whole would have written on top of v1
    assert done.replace("\n", "") != before.replace("\n", "")
    assert rollout(ws, "advance") == 0 and "no rollout of tiny in prod: it serves v2" in capsys.readouterr().out


def test_abort_restores_the_bytes_from_before_the_first_step_and_holds(ws, capsys):
    assert promote(ws, "1") == 0
    before = show(ws)
    assert promote(ws, "2") == 0
    assert rollout(ws, "advance", "--force", "--reason", "go") == 0
    assert rollout(ws, "abort") == ExitCode.USAGE  # a reason is required
    assert rollout(ws, "abort", "--reason", "latency alert from the on-call") == 0
    out = capsys.readouterr().out
    assert "aborted: by " in out and "aborted: aborted" not in out and "prod serves v1 again" in out
    assert show(ws) == before and alias(ws) == "1"
    t = trailers(ws)
    assert t["Rollout-Of"] == "2" and t["Rollout-Step"] == "aborted at 2/2" and t["Rollback-Of"] == "2"
    held = hold.parse(show(ws, hold.path("environments", "prod", "tiny")).encode())
    assert held.version == "1" and "rollout of v2 aborted: by " in held.reason
    assert promote(ws, "2") == ExitCode.INPUT and "hold" in capsys.readouterr().err.lower()
    assert rollout(ws, "abort", "--reason", "again") == 0
    out = capsys.readouterr().out
    assert "no rollout of tiny in prod: it serves v1; on hold there (" in out
    assert "mlops-ci rollback --clear-hold --model tiny --env prod --reason TEXT" in out


def test_the_config_refuses_what_cannot_be_rolled_out(tiny_repo):
    config = tiny_repo / ".mlops-ci.yaml"
    base = config.read_text()
    config.write_text(base.replace("    namespace: tiny-staging\n", "    namespace: tiny-staging\n"
                                   + prod("RawDeployment", steps="[{canary: 50}, {canary: 10}]"), 1))
    with pytest.raises(ConfigError, match=r"the canary steps must rise: \[50, 10\]"):
        load_config(config)
    config.write_text(base.replace("    namespace: tiny-staging\n", "    namespace: tiny-staging\n"
                                   + prod("RawDeployment", extra="      shadow: {percent: 100}\n"), 1))
    with pytest.raises(ConfigError, match="KServe cannot mirror traffic"):
        load_config(config)
    config.write_text(base.replace("    namespace: tiny-staging\n", "    namespace: tiny-staging\n" + prod("x"), 1)
                      .replace("      check: {enabled: false}\n", "      check: {enabled: false}\n      kind: deployment\n"
                               "      image: registry.example.com/tiny@sha256:" + "a" * 64 + "\n", 1))
    with pytest.raises(ConfigError, match="Argo Rollouts is the tool for progressive delivery of Deployments"):
        load_config(config)


@pytest.mark.slow
def test_the_pull_request_s_report_says_the_promotion_rolls_out_and_what_holds_it(champion_repo):
    """A real PR run (train, evaluate) against a staging that rolls out and is frozen: the report's
    deployment plan says the merge starts a rollout, and which freeze holds it until when."""
    from conftest import cli as run_cli
    from conftest import commit, set_params

    repo = champion_repo
    git(repo, "checkout", "--quiet", "-b", "pr/rollout")
    config = repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace(
        "    namespace: tiny-staging\n",
        "    namespace: tiny-staging\n    rollout:\n      steps: [{canary: 10}, {canary: 50}]\n"
        "    policy:\n      freeze:\n        - {start: 2026-01-01T00:00:00Z, end: 2099-01-01T00:00:00Z, "
        "reason: year-end change freeze}\n", 1))
    set_params(repo, epochs=120)
    commit(repo, "more epochs; staging rolls out")
    run = run_cli(repo, "run")
    assert run.returncode == 0, run.stderr[-3000:]
    report = run_cli(repo, "report")
    assert report.returncode == 0, report.stderr[-2000:]
    text = report.stdout
    assert "Deployment plan: tiny v2 → `staging`" in text
    assert "Rolls out: step 1/2: v2 takes 10% beside v1" in text and "moves to v2 when it completes" in text
    assert "> ⚠️ " in text and "year-end change freeze" in text and "2099-01-01" in text


def test_prod_after_staging_counts_only_a_completed_rollout_in_staging(tiny_repo, tmp_path_factory, monkeypatch,
                                                                      capsys):
    monkeypatch.setenv("MLOPS_CI_CRDS", str(CONTRACTS / "kserve"))
    config = tiny_repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace(
        "    namespace: tiny-staging\n",
        "    namespace: tiny-staging\n    rollout: {steps: [{canary: 25}]}\n"
        "  prod:\n    namespace: tiny-prod\n    policy: {after: staging}\n", 1))
    git(tiny_repo, "commit", "-qam", "staging rolls out; prod after staging")
    ws = passing_registry_workspace(tiny_repo, tmp_path_factory.mktemp("registry"))

    def to(env: str, version: str, *extra: str) -> int:
        return cli(ws, "promote", "--model", "tiny", "--env", env, "--version", version, *extra)

    assert to("staging", "1") == 0 and to("prod", "1") == 0
    assert to("staging", "2") == 0  # a canary in staging: not served there yet
    capsys.readouterr()
    assert to("prod", "2") == ExitCode.INPUT
    assert "tiny v2 was never served in staging, which prod comes after" in capsys.readouterr().err
    assert cli(ws, "rollout", "advance", "--model", "tiny", "--env", "staging", "--force", "--reason", "ok") == 0
    assert to("prod", "2") == 0  # the rollout completed in staging: v2 is served there
    assert canary.state(show(ws, "environments/prod/tiny/inferenceservice.yaml").encode()) is None


def test_a_change_of_deployment_mode_is_made_whole_before_a_canary(tiny_repo, tmp_path_factory, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_CI_CRDS", str(CONTRACTS / "kserve"))
    ws = workspace(tiny_repo, tmp_path_factory.mktemp("registry"), "RawDeployment")
    assert promote(ws, "1") == 0
    config = tiny_repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace("deployment_mode: RawDeployment", "deployment_mode: Serverless"))
    git(tiny_repo, "commit", "-qam", "serverless")
    capsys.readouterr()
    assert promote(ws, "2") == ExitCode.INPUT  # no Knative revision of v1 to split with
    err = capsys.readouterr().err
    assert "prod serves tiny v1 in RawDeployment mode and the config now says Serverless" in err
    assert "first promote the version served, in the new mode" in err and "--version 1" in err
    assert promote(ws, "1") == 0 and "deploymentMode: Serverless" in show(ws)  # v1 re-rendered whole
    assert promote(ws, "2") == 0 and canary.state(show(ws).encode()).canary == 10


@pytest.mark.parametrize("ws", ["RawDeployment"], indirect=True)
def test_status_and_advance_without_a_model_go_through_every_model_of_the_environment(ws, tmp_path, capsys):
    """Two models in prod, one rolling out: one look for each, from one checkout; the step taken is the
    rolling one's only."""
    from mlops_ci.backends.tracking import tracking_for

    config = ws.loaded.path
    text = config.read_text()
    models = text.index("models:\n")
    config.write_text(text + text[models + len("models:\n"):].replace("  tiny:\n", "  tiny2:\n", 1))
    git(ws.top, "commit", "-qam", "a second model")
    ws = Workspace.from_config(load_config(config), env={})
    tracking = tracking_for(ws)
    for n in (1, 2):
        folder = tmp_path / f"tiny2-{n}"
        folder.mkdir()
        (folder / "model.bin").write_text(f"tiny2 {n}\n")
        tracking.register("tiny2", str(folder), run_id=None,
                          tags={"mlops_ci.digest": f"sha256:{str(n) * 64}", "mlops_ci.head_sha": "c" * 40,
                                "mlops_ci.evaluation": "pass"})
    assert promote(ws, "1") == 0 and promote(ws, "2") == 0
    assert cli(ws, "promote", "--model", "tiny2", "--env", "prod", "--version", "1") == 0
    capsys.readouterr()
    assert cli(ws, "rollout", "status", "--env", "prod") == 0
    out = capsys.readouterr().out
    assert "tiny in prod: wait (step 1/2: v2 takes 10% beside v1)" in out
    assert "tiny2 in prod: none: no rollout of tiny2 in prod: it serves v1" in out
    assert cli(ws, "rollout", "advance", "--env", "prod", "--force", "--reason", "release train") == 0
    out = capsys.readouterr().out
    assert "tiny in prod: advanced to step 2/2" in out and "tiny2 in prod: none" in out
    assert canary.state(show(ws).encode()).step == 2

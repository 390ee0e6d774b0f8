"""`mlops-ci demo`: the whole loop on a scratch copy of examples/churn.

    main:  data v1 -> train -> evaluate (no champion: bootstrap) -> promote v1 to staging
    PR:    new month of data + wider model -> checks (drift) -> train -> evaluate vs v1 -> register v2 -> report
    merge: the run on main finds v2 by its training fingerprint (no retraining) -> promote v2 to staging
           -> GitOps commit; alias staging -> v2
    watch: a simulated week of staging's traffic in KServe's payload-log layout, prices climbing
           -> mlops-ci monitor: drift per day against v2's reference -> the monitoring issue
           -> a retraining branch with refreshed data (the pull request locally: a branch)

Everything runs for real: git, DVC with a local remote, MLflow on SQLite, torchrun with two
gloo processes, and a local bare repository standing in for the GitOps remote.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from mlops_ci.console import ConsoleProgress, echo
from mlops_ci.demo import scaffold

PR_BRANCH = "pr/october-data"


@dataclass
class DemoResult:
    workdir: Path
    repo: Path
    champion_version: str
    candidate_version: str
    gitops_commit: str
    report_path: Path
    seconds: float
    merge_retrained: bool = False
    monitor: object = None  # the MonitorRecord of step 6


def _workspace(repo: Path):
    from mlops_ci.config import load_config
    from mlops_ci.workspace import Workspace

    return Workspace.from_config(load_config(repo / ".mlops-ci.yaml"), env=scaffold.tool_env())


def run_demo(workdir: Path, *, out: TextIO | None = None, progress: ConsoleProgress | None = None) -> DemoResult:
    from mlops_ci.context import local_context
    from mlops_ci.errors import GateFailed
    from mlops_ci.pipeline import default_backends, run_pipeline
    from mlops_ci.records import save_record
    from mlops_ci.render.report import render_report
    from mlops_ci.stages.candidate import candidate_from_record
    from mlops_ci.stages.promote import promote

    start = time.monotonic()
    progress = progress or ConsoleProgress()
    say = lambda text="": echo(text, stream=out)

    with progress.step("1/6 scaffold: examples/churn as a git + DVC repository"):
        workdir = scaffold.fresh_workdir(workdir)
        repo = scaffold.copy_example(workdir / "churn")
        scaffold.init_repo(repo, workdir / "dvc-remote")
        progress.log(scaffold.generate(repo, "--snapshot", "2026-09", "--rows", "12000", "--seed", "1"))
        scaffold.track_data(repo, "data/train.csv", "data/eval.csv")
        scaffold.commit_all(repo, "churn model with September data")

    ws = _workspace(repo)
    backends = default_backends(ws)
    env = ws.config.promotion.on_merge or next(iter(ws.config.environments))

    with progress.step("2/6 main: train, evaluate and promote the first champion"):
        ctx = local_context(repo, default_branch="main")
        record = run_pipeline(ws, ctx, backends=backends, progress=progress,
                              record_path=ws.state_dir / "main-record.json")
        if record.verdict == "fail":
            raise GateFailed("demo: the first model failed its gates:\n" + render_report(record))
        champion = promote(ws, candidate_from_record(ws, record, "churn"), env, tracking=backends.tracking,
                           gitops=backends.gitops)
        progress.log(f"champion: churn v{champion.version} -> {env}, GitOps commit {champion.commit_sha[:12]}")

    with progress.step(f"3/6 pull request {PR_BRANCH}: October data, new 'fiber' plan, wider model"):
        scaffold.git(repo, "checkout", "--quiet", "-b", PR_BRANCH)
        progress.log(scaffold.generate(repo, "--snapshot", "2026-10", "--rows", "15000", "--seed", "2",
                                       "--price-increase", "12", "--new-plan"))
        scaffold.edit_params(repo, hidden=64, epochs=10)
        scaffold.track_data(repo, "data/train.csv", "data/eval.csv")
        scaffold.commit_all(repo, "October data with the new fiber plan; wider model")

    with progress.step("4/6 PR check: checks, training, evaluation vs champion, report"):
        pr_ctx = local_context(repo, default_branch="main")
        pr_record_path = ws.state_dir / "pr-record.json"
        pr_record = run_pipeline(ws, pr_ctx, backends=backends, progress=progress, record_path=pr_record_path)
        report = render_report(pr_record)
        report_path = ws.state_dir / "report.md"
        report_path.write_text(report, encoding="utf-8")
    say("=" * 100)
    say(f"PR report ({report_path}):")
    say("=" * 100)
    say(report)

    if pr_record.verdict == "fail":
        raise GateFailed(f"demo: the pull request's verdict is fail; see {report_path}")

    with progress.step("5/6 merge the PR: the reviewed candidate ships, not retrained"):
        scaffold.git(repo, "checkout", "--quiet", "main")
        scaffold.git(repo, "merge", "--quiet", "--no-ff", PR_BRANCH, "-m", f"Merge branch '{PR_BRANCH}'")
        merge_ctx = local_context(repo, default_branch="main")
        merge_path = ws.state_dir / "merge-record.json"
        merge_record = run_pipeline(ws, merge_ctx, backends=backends, progress=progress, record_path=merge_path)
        merged = merge_record.model("churn")
        if merged.training is not None and merged.training.reused is not None:
            progress.log(f"churn v{merged.training.reused.version} found by its training fingerprint: "
                         f"{merged.training.fingerprint.note}; not retrained")
        result = promote(ws, candidate_from_record(ws, merge_record, "churn"), env, tracking=backends.tracking,
                         gitops=backends.gitops)
        merged.promotions.append(result)
        save_record(merge_record, merge_path)
        alias = backends.tracking.version_by_alias("churn", ws.config.alias_for(env))

    gitops = Path(ws.gitops_remote)
    from mlops_ci import gitutil

    say("=" * 100)
    say(f"GitOps commit in {gitops} (what Argo CD would sync):")
    say("=" * 100)
    say(gitutil.out(["log", "-1", "--format=commit %H%nAuthor: %an <%ae>%n%n%B", result.commit_sha], gitops))
    say(gitutil.out(["show", "--stat", "--format=", result.commit_sha], gitops))
    for change in result.changes:
        say(f"--- {change.path} ---")
        say(gitutil.out(["show", f"{result.commit_sha}:{change.path}"], gitops))
    monitored = _watch(ws, backends, env, alias.version if alias else result.version, progress, say)
    seconds = time.monotonic() - start
    say("=" * 100)
    say(f"Demo finished in {seconds:.0f}s. churn v{alias.version if alias else '?'} holds alias "
        f"{ws.config.alias_for(env)!r}; v{champion.version} was the champion before the merge.")
    say(f"  repository      {repo}")
    say(f"  PR report       {report_path}")
    say(f"  run records     {ws.state_dir / 'main-record.json'}, {pr_record_path}, {merge_path}")
    say(f"  GitOps history  git -C {gitops} log --stat")
    say(f"  MLflow UI       mlflow ui --backend-store-uri {ws.tracking_uri}")
    if monitored.issue is not None and monitored.issue.path:
        say(f"  monitoring      {monitored.issue.path}; the record beside it")
    if monitored.retrain is not None and monitored.retrain.branch:
        say(f"  retraining      git -C {repo} log --stat main..{monitored.retrain.branch}")
    return DemoResult(workdir=workdir, repo=repo, champion_version=champion.version, candidate_version=result.version,
                      gitops_commit=result.commit_sha or "", report_path=report_path, seconds=seconds,
                      merge_retrained=merged.training is None or merged.training.reused is None, monitor=monitored)


def _watch(ws, backends, env: str, version: str, progress: ConsoleProgress, say):
    """Step 6: a simulated week of the served version's traffic, then `mlops-ci monitor`."""
    from datetime import UTC, datetime
    from datetime import time as day_start

    from mlops_ci.demo.traffic import DAYS, simulate_week
    from mlops_ci.pipeline.monitor import MonitorOptions, monitor
    from mlops_ci.records.monitor import save_monitor_record
    from mlops_ci.render.monitor import console_summary

    cfg = ws.model("churn")
    logs = ws.root / (cfg.monitoring.logs or "kserve-logs")
    until = datetime.combine(datetime.now(UTC).date(), day_start(), tzinfo=UTC)
    namespace = ws.config.environments[env].namespace
    with progress.step(f"6/6 watch: a week of {env}'s traffic, monitored against v{version}'s reference"):
        info = backends.tracking.get_version("churn", version)
        written = simulate_week(ws.root, logs, model="churn", namespace=namespace, label=cfg.data.label, until=until,
                                predict=lambda frame: backends.tracking.predict(info.artifact_uri, frame))
        progress.log(f"{written} simulated requests over {DAYS} days (real format: KServe's logger storage "
                     f"layout under {logs}; real responses: v{version}'s predictions), prices climbing daily")
        record = monitor(ws, "churn", env, MonitorOptions(until=until), backends=backends, env=ws.env,
                         progress=progress)
        out = ws.state_dir / "monitor" / f"churn-{env}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        save_monitor_record(record, out)
    say("=" * 100)
    say(f"mlops-ci monitor --model churn --env {env} (simulated requests, KServe's real log format):")
    say("=" * 100)
    say(console_summary(record))
    if record.issue is not None and record.issue.path:
        say("-" * 100)
        say(f"The monitoring issue ({record.issue.path}; on GitHub, one issue kept up to date):")
        say("-" * 100)
        say(Path(record.issue.path).read_text(encoding="utf-8"))
    if record.retrain is not None and record.retrain.branch:
        from mlops_ci import gitutil

        say("-" * 100)
        say(f"The retraining branch {record.retrain.branch} (on GitHub, a pull request that runs the ordinary checks):")
        say("-" * 100)
        say(gitutil.out(["log", "-1", "--stat", "--format=commit %H%n%n%B", record.retrain.branch], ws.top))
    return record

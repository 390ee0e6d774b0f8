"""`mlops-ci monitor`, end to end: analyse the served version's traffic
(:mod:`mlops_ci.stages.monitor`), keep the model's monitoring issue in step with it, and open or
update the retraining pull request (:mod:`mlops_ci.stages.retrain`).

Where: on GitHub when the job has ``GITHUB_TOKEN`` and ``GITHUB_REPOSITORY`` (the issue through
the Issues API, the branch pushed to ``origin`` and the pull request through the Pulls API);
otherwise locally (the issue's Markdown written to a file, the branch left in the local
repository). ``--no-issue`` and ``--no-retrain`` leave either alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mlops_ci import gitutil
from mlops_ci.console import NullProgress, Progress
from mlops_ci.errors import BackendError, GitError
from mlops_ci.pipeline.flow import Backends
from mlops_ci.records.monitor import INSUFFICIENT, IssueAction, MonitorRecord, RetrainAction
from mlops_ci.render import monitor as page
from mlops_ci.stages import retrain
from mlops_ci.stages.monitor import analyse_traffic
from mlops_ci.workspace import Workspace


@dataclass(frozen=True)
class MonitorOptions:
    until: datetime
    window: str | None = None
    windows: int | None = None
    logs: str | None = None
    issue: bool = True
    retrain: bool = True
    issue_file: Path | None = None  # local: where the issue's Markdown goes
    store: bool = True  # False (--dry-run): a reference computed from lineage is not stored


def _github(env: Mapping[str, str]):
    if not (env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")) or not env.get("GITHUB_REPOSITORY"):
        return None
    from mlops_ci.backends.github.client import make_client

    return make_client(env), env["GITHUB_REPOSITORY"]


def _issue(ws: Workspace, record: MonitorRecord, github, options: MonitorOptions) -> IssueAction:
    # the latest window decides: at fail (or a retraining asked for) it opens or reopens the issue;
    # pass or warn closes it; too little traffic does neither
    last = record.latest()
    latest = last.status if last is not None else INSUFFICIENT
    finding = latest == "fail" or (record.retrain is not None and record.retrain.action in ("opened", "updated"))
    link = None
    if record.retrain is not None and record.retrain.url:
        link = f"[retraining pull request #{record.retrain.number}]({record.retrain.url})"
    elif record.retrain is not None and record.retrain.branch:
        link = f"branch {page.code(record.retrain.branch)}"
    body = page.issue_body(record, retrain_link=link)
    if github is None:
        path = options.issue_file or ws.root / ".mlops-ci" / "monitor" / f"{record.model}-{record.env}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
        return IssueAction(action="written", path=str(path)[-1000:])
    from mlops_ci.backends.github.monitoring import MonitoringIssues

    client, repository = github
    synced = MonitoringIssues(client, repository).sync(
        marker=page.marker(record.model, record.env), label=page.LABEL, title=page.title(record.model, record.env),
        body=body, finding=finding, recovered=latest in ("pass", "warn"), recovered_comment=page.recovered_comment(record))
    return IssueAction(action=synced.action, number=synced.number, url=synced.url)


def _retrain(ws: Workspace, record: MonitorRecord, github, options: MonitorOptions,
             progress: Progress) -> RetrainAction:
    from mlops_ci.stages.retrain import RetrainPull

    settings = ws.model(record.model).monitoring
    if github is None:
        pulls = retrain.local_pulls(ws, record.model)
    else:
        from mlops_ci.backends.github.pulls import pulls_from

        pulls = [RetrainPull(**p) for p in pulls_from(github[0], github[1], retrain.prefix(record.model))]
    final, branch, new = retrain.plan(record, settings, pulls, until=options.until)
    if final is not None:
        return final
    assert branch is not None
    reason = retrain.why(record, settings) or ""
    start = ws.default_ref() or "HEAD"
    try:
        if github is not None and not new:
            gitutil.git(["fetch", "--quiet", "origin", f"+refs/heads/{branch}:refs/heads/{branch}"], ws.top)
        with progress.step(f"refreshing the data on {branch}: {' '.join(settings.retrain.command or [])}"):
            commit = retrain.refresh(ws, record, settings, branch=branch, start=start, reason=reason, new=new)
        if commit is None and not new:
            return RetrainAction(action="unchanged", reason=f"{reason}; the data refresh changed nothing since the "
                                 f"last commit on {branch}: its retraining stands", branch=branch)
        if commit is None:
            return RetrainAction(action="not opened", reason=f"{reason}; but the data refresh command changed "
                                 "nothing, so there is nothing to retrain on", branch=None)
        action = "opened" if new else "updated"
        if github is None:
            return RetrainAction(action=action, reason=reason, branch=branch, commit=commit)
        from mlops_ci.backends.github.pulls import open_or_update

        gitutil.git(["push", "--quiet", "origin", f"refs/heads/{branch}:refs/heads/{branch}"], ws.top)
        title = f"Retrain {record.model}: served traffic drifted in {record.env}"
        issue = record.issue
        body = (f"Opened by `mlops-ci monitor`: {reason}.\n\n"
                f"{record.model} v{record.version} serves {record.env}. The data was refreshed by "
                f"`{' '.join(settings.retrain.command or [])}` for the failing windows; this pull request "
                "runs the ordinary checks, training and evaluation against the champion.\n"
                + (f"\nMonitoring issue: #{issue.number}\n" if issue and issue.number else ""))
        url = open_or_update(github[0], github[1], base=ws.config.default_branch, head=branch, title=title,
                             body=body)
        number = int(url.rstrip("/").rsplit("/", 1)[-1]) if url.rstrip("/").rsplit("/", 1)[-1].isdigit() else None
        return RetrainAction(action=action, reason=reason, branch=branch, commit=commit, url=url, number=number)
    except (GitError, BackendError) as err:
        return RetrainAction(action="failed", reason=f"{reason}; {err.message}"[:8000], branch=branch)


def monitor(ws: Workspace, model: str, env_name: str, options: MonitorOptions, *, backends: Backends,
            env: Mapping[str, str], progress: Progress | None = None,
            record: MonitorRecord | None = None) -> MonitorRecord:
    """Analyse the traffic (or take ``record``: the fan-out's merged one), then the issue and the
    retraining."""
    progress = progress or NullProgress()
    if record is None:
        record = analyse_traffic(ws, model, env_name, until=options.until, tracking=backends.tracking,
                                 gitops=backends.gitops, window=options.window, windows=options.windows,
                                 logs=options.logs, progress=progress.log, store=options.store)
    github = _github(env) if (options.issue or options.retrain) else None
    if options.issue:  # first, so that a retraining pull request can link it
        record = record.model_copy(update={"issue": _issue(ws, record, github, options)})
    if options.retrain:
        record = record.model_copy(update={"retrain": _retrain(ws, record, github, options, progress)})
        if options.issue and record.retrain.action != "not needed":
            first = record.issue
            again = _issue(ws, record, github, options)  # now with what retraining did
            if first is not None and first.action in ("created", "reopened", "closed"):
                again = again.model_copy(update={"action": first.action})
            record = record.model_copy(update={"issue": again})
    return record


__all__ = ["MonitorOptions", "monitor"]

"""The retraining pull request: when served traffic says so (drift at ``fail`` for
``monitoring.retrain.after`` consecutive windows, or a live metric outside its gate), run the
repository's data-refresh command with the window's dates, commit what it changed on
``mlops-ci/retrain/<model>/<date>`` and open one pull request. It then goes through the ordinary
flow (checks, training, evaluation against the champion, the deployment plan).

One per episode: while a retraining pull request of the model is open, later runs commit onto
its branch and update it instead of opening another; one closed unmerged snoozes retraining for
``retrain.snooze``. Locally (no GitHub), the branch is created in the local repository.

The command runs in a separate worktree of the repository (the caller's checkout is never
touched), with DVC's cache pointed at the checkout's own, and data it added is pushed to the DVC
remote before the branch is: a pull request must never name data CI cannot fetch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mlops_ci import gitutil
from mlops_ci.config.monitoring import MonitoringConfig, parse_duration
from mlops_ci.errors import GitError
from mlops_ci.records.monitor import MonitorRecord, RetrainAction
from mlops_ci.stages.monitor import metric_failed
from mlops_ci.workspace import Workspace

BRANCH_PREFIX = "mlops-ci/retrain"
BOT = ("mlops-ci", "mlops-ci@users.noreply.github.com")
TOKENS = ("GITHUB_TOKEN", "GH_TOKEN", "MLOPS_CI_GITOPS_TOKEN", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")


@dataclass(frozen=True)
class RetrainPull:
    """A retraining pull request as the host knows it."""

    branch: str
    state: str  # open | closed
    merged: bool
    closed_at: datetime | None
    number: int | None = None
    url: str | None = None


def prefix(model: str) -> str:
    return f"{BRANCH_PREFIX}/{model}/"


def why(record: MonitorRecord, settings: MonitoringConfig) -> str | None:
    """Why the model should be retrained now, or None."""
    after = settings.retrain.after
    streak = record.streak()
    if streak >= after:
        latest = record.latest()
        return (f"drift at fail in {streak} consecutive window(s) up to {latest.end[:16] if latest else '?'} "
                f"(retrain.after: {after})")
    if settings.retrain.on_metric:
        failed = metric_failed(record)
        if failed:
            return f"live {', '.join(failed)} outside the evaluation gate in the latest labelled window"
    return None


def episode(record: MonitorRecord) -> tuple[str, str]:
    """The dates the refresh is for: from the first window of the failing streak to the last."""
    latest = record.latest() or record.windows[-1]
    end = record.windows.index(latest) + 1
    streak = max(record.streak(), 1)
    return record.windows[end - streak].start, latest.end


def _run(args: list[str], cwd: Path, *, env: dict | None = None, timeout: float | None = None,
         what: str) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                              errors="replace")
    except FileNotFoundError:
        raise GitError(f"{what}: {args[0]!r} is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"{what}: still running after {timeout:g} s; stopped") from None
    if proc.returncode != 0:
        from mlops_ci.masking import mask

        tail = mask(((proc.stderr or "") + (proc.stdout or "")).strip()[-600:])
        raise GitError(f"{what} exited with status {proc.returncode}: {tail}")
    return proc


def _identity(ws: Workspace) -> dict[str, str]:
    proc = gitutil.git(["var", "GIT_AUTHOR_IDENT"], ws.top, check=False)
    if proc.returncode == 0 and proc.stdout.strip():
        return {}
    name, email = BOT
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email}


def refresh(ws: Workspace, record: MonitorRecord, settings: MonitoringConfig, *, branch: str, start: str,
            reason: str, new: bool) -> str | None:
    """Run the refresh command on ``branch`` (created from ``start`` when ``new``) in a worktree and
    commit what it changed; returns the new commit, or None when the command changed nothing."""
    tmp = Path(tempfile.mkdtemp(prefix="mlops-ci-retrain-"))
    tree = tmp / "tree"
    # -B: a branch of that name left by an episode that is over (merged) starts again from the base
    args = ["worktree", "add", "--quiet", *(["-B", branch] if new else []), str(tree), start if new else branch]
    gitutil.git(args, ws.top)
    done = False
    try:
        sub = ws.root.relative_to(ws.top)
        if not new:  # the open branch takes what the default branch gained since (the refresh command too)
            merged = gitutil.git(["merge", "--quiet", "--no-edit", start], tree, check=False, env=_identity(ws))
            if merged.returncode != 0:
                gitutil.git(["merge", "--abort"], tree, check=False)
                raise GitError(f"the retraining branch {branch} conflicts with {start}: resolve it there (or close "
                               "its pull request and delete the branch) and the next run continues")
        if (ws.top / ".dvc").is_dir():
            cache = _run([sys.executable, "-m", "dvc", "cache", "dir"], ws.top, what="dvc cache dir").stdout.strip()
            _run([sys.executable, "-m", "dvc", "cache", "dir", "--local", cache], tree, what="dvc cache dir")
        begin, end = episode(record)
        # mlops-ci's own environment comes first on PATH: `python` is the interpreter it runs in
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        # the job's GitHub tokens are for opening the pull request, not for the refresh
        env = {k: v for k, v in os.environ.items() if k not in TOKENS}
        env.update({"PATH": path, "MLOPS_CI_WINDOW_START": begin, "MLOPS_CI_WINDOW_END": end,
                    "MLOPS_CI_MODEL": record.model, "MLOPS_CI_ENV": record.env})
        _run(list(settings.retrain.command or []), tree / sub, env=env, timeout=settings.retrain.command_timeout_s,
             what=f"the data refresh command `{' '.join(settings.retrain.command or [])}`")
        gitutil.git(["add", "-A"], tree)
        changed = gitutil.out(["diff", "--cached", "--name-only"], tree).splitlines()
        if not changed:
            if not new:
                done = True  # the branch stays as it was
            return None
        if any(p.endswith((".dvc", "dvc.lock")) for p in changed):
            _run([sys.executable, "-m", "dvc", "push", "--quiet"], tree / sub, what="dvc push")
        message = (f"Retrain {record.model}: {reason}\n\nData refreshed for {begin} .. {end} by "
                   f"`{' '.join(settings.retrain.command or [])}`.\n\nMlops-Ci-Retrain: {record.model}\n"
                   f"Mlops-Ci-Served-Version: {record.version}\n")
        gitutil.git(["commit", "--quiet", "--no-verify", "-m", message], tree, env=_identity(ws))
        done = True
        return gitutil.out(["rev-parse", "HEAD"], tree)
    finally:
        gitutil.git(["worktree", "remove", "--force", str(tree)], ws.top, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        if new and not done:  # a failed or empty first refresh leaves no branch behind
            gitutil.git(["branch", "-D", branch], ws.top, check=False)


def local_pulls(ws: Workspace, model: str) -> list[RetrainPull]:
    """Retraining branches in the local repository not merged into the default branch (open)."""
    base = ws.default_ref() or "HEAD"
    refs = gitutil.out(["for-each-ref", "--format=%(refname:short)", f"refs/heads/{prefix(model)}"], ws.top)
    return [RetrainPull(branch=b, state="open", merged=False, closed_at=None) for b in refs.splitlines()
            if b and not gitutil.is_ancestor(b, base, ws.top)]


def plan(record: MonitorRecord, settings: MonitoringConfig, pulls: list[RetrainPull], *,
         until: datetime) -> tuple[RetrainAction | None, str | None, bool]:
    """What to do: (a final action, or None to refresh), the branch, whether it is new."""
    if not settings.retrain.enabled:
        return RetrainAction(action="disabled", reason="monitoring.retrain.enabled is false"), None, False
    reason = why(record, settings)
    if reason is None:
        return RetrainAction(action="not needed", reason="no drift at fail for long enough, no live metric "
                             "outside its gate"), None, False
    open_ = [p for p in pulls if p.state == "open"]
    if open_:
        return None, open_[0].branch, False
    snooze = parse_duration(settings.retrain.snooze)
    closed = [p for p in pulls if p.state == "closed" and not p.merged and p.closed_at is not None
              and until - p.closed_at < snooze]
    if closed:
        last = max(closed, key=lambda p: p.closed_at)
        wakes = (last.closed_at + snooze).isoformat(timespec="minutes")
        return RetrainAction(action="snoozed", reason=f"{reason}; but a retraining pull request was closed "
                             f"unmerged at {last.closed_at.isoformat(timespec='minutes')}: snoozed until {wakes} "
                             f"(retrain.snooze: {settings.retrain.snooze})", number=last.number), None, False
    if not settings.retrain.command:
        return RetrainAction(action="not opened", reason=f"{reason}; but monitoring.retrain.command is not set, so "
                             "nothing refreshes the data: set it (e.g. [dvc, repro, fetch-data])"), None, False
    return None, f"{prefix(record.model)}{until.date().isoformat()}", True


__all__ = ["BRANCH_PREFIX", "RetrainPull", "episode", "local_pulls", "plan", "prefix", "refresh", "why"]

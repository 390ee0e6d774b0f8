"""Rollout stage: look at a rollout and, when asked, act: wait, advance, complete, abort or hold.

    state (the manifest's annotation) -> live? (Argo CD: Synced to the step's commit, Healthy)
          -> soaked? -> analysis (Prometheus, inference logs) -> pass: next step / full promotion
                                                               -> fail: abort (revert + hold)
                                                               -> inconclusive: soak on, then hold or abort

Stateless and idempotent: everything is read again on each run (the GitOps repository, Argo CD,
the metrics), so a schedule can call ``advance`` every few minutes and two runs at once commit at
most once (the second plans again on the new tip and finds the state moved). Nothing promotes on
missing data: no analysis source, too little traffic, or a source unreachable is inconclusive.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mlops_ci import gitutil, policy
from mlops_ci.backends.gitops import GitOpsRemote
from mlops_ci.backends.gitops.base import Checkout
from mlops_ci.backends.tracking import Tracking
from mlops_ci.errors import PushConflict, UsageError
from mlops_ci.records.rollout import RolloutFinding, RolloutRecord
from mlops_ci.rollout.verdict import FAIL, INCONCLUSIVE, Verdict, Window
from mlops_ci.serving import canary, hold
from mlops_ci.stages import promotion
from mlops_ci.stages.promotion import Proposals
from mlops_ci.stages.rollback import RollbackPlanner
from mlops_ci.stages.rollout_sources import Sources, sources_for
from mlops_ci.stages.rollout_steps import StepPlanner, started_with, workload
from mlops_ci.workspace import Workspace

ACTOR = "mlops-ci rollout"
# a look at the state alone (an abort reads no Argo CD and judges nothing)
_STATE_ONLY = Sources(argocd=None, analyse=lambda step, window: Verdict(INCONCLUSIVE))


@dataclass
class _Look:
    step: canary.Step | None
    serving: str | None  # the version served whole, when there is no rollout
    commit: str = ""
    live_since: datetime | None = None
    not_live: str | None = None
    source_commit: str | None = None  # the commit the rollout's first step shipped (its Source-Commit)
    held: str | None = None  # no rollout, and a hold marker (an abort's, a rollback's) in place


def _duration(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _look(ws: Workspace, model: str, env: str, gitops: GitOpsRemote, sources: Sources,
          shared: Checkout | None = None) -> _Look:
    """Where the rollout stands, read from a fresh checkout, or from ``shared`` (one checkout a run
    over many models reads them all from: a step found stale there is planned on a fresh one anyway,
    and writes nothing if the state moved)."""
    from mlops_ci.backends.argocd import live

    path = workload(ws, env, model)
    with (nullcontext(shared) if shared is not None else gitops.checkout()) as co:
        data = co.read(path)
        step = canary.state(data)
        if step is None:
            held = co.read(hold.path(ws.config.gitops.path, env, model))
            parsed = hold.parse(held) if held is not None else None
            return _Look(step=None, serving=canary.serving_version(data),
                         held=(f"on hold there ({parsed.describe() if parsed else 'a hold marker'}): a promotion is "
                               f"refused until `{hold.clear_command(model, env)}`") if held is not None else None)
        last = co.log([path])[0]  # the step's commit: the newest that changed the manifest
        look = _Look(step=step, serving=None, commit=last.sha,
                     live_since=max(datetime.fromtimestamp(last.committed, UTC), step.started_at),
                     source_commit=started_with(co, path, step.version).get("source-commit") or None)
        if sources.argocd is not None:
            from mlops_ci.backends.argocd import ArgoCDError

            try:
                status = sources.argocd()
            except ArgoCDError as err:
                if not err.retryable:  # a refused token, an unknown application: the config's to fix
                    raise
                look.not_live = f"Argo CD did not answer ({err.message}); the next run asks again"
                return look
            workdir = co.workdir

            def contains(descendant: str, ancestor: str) -> bool:
                return workdir is not None and gitutil.is_ancestor(ancestor, descendant, workdir)

            ok, why = live(status, last.sha, contains)  # type: ignore[arg-type]
            if not ok:
                look.not_live = why
            elif getattr(status, "operation_finished_at", None):
                look.live_since = max(look.live_since, status.operation_finished_at)  # type: ignore[attr-defined]
    return look


def advance(ws: Workspace, model: str, env: str, *, tracking: Tracking, gitops: GitOpsRemote,
            sources: Sources | None = None, now: datetime | None = None, force_reason: str | None = None,
            act: bool = True, dry_run: bool = False, proposals: Proposals | None = None,
            shared: Checkout | None = None) -> RolloutRecord:
    """Look at the rollout of ``model`` in ``env`` and (``act``) do what it calls for. ``force_reason``:
    advance a step that is not soaked or not conclusive (never one that is not live); recorded.
    ``proposals``: where the environment's promotions are proposed as pull requests (their approval
    gates every step where it lists approvers). ``shared``: a checkout to look in (see :func:`_look`)."""
    ws.model(model)
    env = ws.environment(env)
    plan = ws.config.environments[env].rollout
    if plan is None:
        raise UsageError(f"{env} has no rollout: a promotion there swaps the version in one commit",
                         hint=f"add environments.{env}.rollout.steps to .mlops-ci.yaml")
    sources = sources or sources_for(ws, model, env)
    now = now or datetime.now(UTC)
    look = _look(ws, model, env, gitops, sources, shared)
    step = look.step
    if step is None:
        what = f"it serves v{look.serving}" if look.serving else "it serves no version of it"
        what += f"; {look.held}" if look.held else ""
        return RolloutRecord(model=model, env=env, action="none", reason=f"no rollout of {model} in {env}: {what}",
                             version=look.serving)
    base = {"model": model, "env": env, "version": step.version, "primary": step.primary, "step": step.describe(),
            "live_since": look.live_since.isoformat(timespec="seconds") if look.live_since else None,
            "dry_run": dry_run, "source_commit": look.source_commit, "step_number": step.step, "steps": step.steps,
            "canary_percent": step.canary}
    if look.not_live:
        return RolloutRecord(**base, action="wait", reason=f"not live yet: {look.not_live}")
    assert look.live_since is not None
    cfg = plan.steps[min(step.step, len(plan.steps)) - 1]
    from mlops_ci.config.rollout import parse_duration

    soak, elapsed = parse_duration(cfg.soak), now - look.live_since
    if force_reason:
        analysis = f"skipped: forced ({' '.join(force_reason.split())[:200]})"
    else:  # judged on every look, so that a canary failing mid-soak is rolled back at once
        window = Window(max(look.live_since, now - plan.lookback_of(cfg)), now)
        verdict = sources.analyse(step, window)
        analysis = verdict.summary()
        base["verdict"], base["findings"] = verdict.status, [
            RolloutFinding(source=f.source, name=f.name, status=f.status, message=f.message) for f in verdict.findings]
        limit = plan.max_soak_of(cfg)
        # a fail counts once the window is whole (live for a lookback, or for the soak if that is
        # shorter): a p99 over the step's first seconds is a few requests' noise, not the canary's
        whole = elapsed >= min(plan.lookback_of(cfg), soak)
        if verdict.status == FAIL and not whole:
            return RolloutRecord(**base, action="wait", reason=f"failing so far, over {_duration(elapsed)} of the "
                                 f"{_duration(min(plan.lookback_of(cfg), soak))} a fail needs: {analysis}")
        if verdict.status == FAIL or (verdict.status == INCONCLUSIVE and elapsed >= limit
                                      and plan.on_inconclusive == "abort"):
            if not act:
                return RolloutRecord(**base, action="wait", reason=f"would abort: {analysis}")
            return _abort(ws, model, env, step, f"analysis {analysis}", tracking=tracking, gitops=gitops,
                          dry_run=dry_run, base=base)
        if elapsed < soak:
            return RolloutRecord(**base, action="wait", reason=f"soaking: live for {_duration(elapsed)} of "
                                 f"{_duration(soak)}; the analysis so far: {verdict.status}")
        if verdict.status == INCONCLUSIVE and elapsed < limit:
            return RolloutRecord(**base, action="wait", reason=f"{analysis}; the soak goes on (up to "
                                 f"{_duration(limit)}, live for {_duration(elapsed)})")
        if verdict.status == INCONCLUSIVE:
            return RolloutRecord(**base, action="held", reason=f"{analysis} after {_duration(elapsed)} (max_soak "
                                 f"{_duration(limit)}): a person decides: `mlops-ci rollout "
                                 f"advance --force --reason TEXT` or `mlops-ci rollout abort`")
    unapproved = _unapproved(ws, model, env, step, proposals)
    if unapproved:
        return RolloutRecord(**base, action="held", reason=unapproved)
    if not act:
        return RolloutRecord(**base, action="wait", reason=f"would advance: {analysis}")
    return _step(ws, model, env, step, analysis, tracking=tracking, gitops=gitops, force_reason=force_reason,
                 dry_run=dry_run, base=base)


def _unapproved(ws: Workspace, model: str, env: str, step: canary.Step, proposals: Proposals | None) -> str | None:
    """Where the environment lists approvers and takes promotions as pull requests, a rollout goes on
    only once an approver approved the pull request that started it (its first step): why not, or None."""
    from mlops_ci.promotions import promote_via

    if proposals is None or not ws.config.environments[env].policy.approvers or \
            promote_via(ws.config, env) != "pull_request":
        return None
    approval = proposals(env, model, step.version).approval()
    if approval is None or approval.approved:
        return None
    return (f"the pull request that started the rollout of {model} v{step.version} is not approved: "
            f"{approval.why_not}; the rollout goes on once an approver approves it")


def _step(ws: Workspace, model: str, env: str, step: canary.Step, analysis: str, *, tracking: Tracking,
          gitops: GitOpsRemote, force_reason: str | None, dry_run: bool, base: dict) -> RolloutRecord:
    intent = policy.Intent("promote", model, env, version=step.version, force_reason=force_reason, via="push",
                           allow_unmerged=True, dry_run=dry_run)
    planner = StepPlanner(ws, step, analysis, tracking=tracking, gitops=gitops)
    applied = promotion.apply(ws, intent, planner, tracking=tracking, gitops=gitops, raise_refused=False)
    if applied.record is None:  # the policy holds it (a freeze, a hold, the environment order)
        decision = applied.decision
        return RolloutRecord(**base, action="wait", reason=f"the policy holds the next step: "
                             f"{decision.error(also=decision.blocking).message}")
    if planner.moved is not None:
        return RolloutRecord(**base, action="none", reason=f"another run moved the rollout meanwhile: "
                             f"{planner.moved.describe() if planner.moved != step else 'nothing to do'}")
    done = planner.completes
    what = (f"completed: v{step.version} serves all of {env}; alias {ws.config.alias_for(env)!r} -> v{step.version}"
            if done else f"advanced to {planner.next.describe() if planner.next else '?'}")
    return RolloutRecord(**base, action="completed" if done else "advanced",
                         reason=f"{'dry run: would have ' if dry_run else ''}{what} ({analysis})",
                         commit_sha=applied.record.commit_sha, remote=gitops.url, branch=gitops.branch)


def _abort(ws: Workspace, model: str, env: str, step: canary.Step, why: str, *, tracking: Tracking,
           gitops: GitOpsRemote, dry_run: bool, base: dict, actor: str = ACTOR) -> RolloutRecord:
    trailers = (("Rollout-Of", step.version), ("Rollout-Step", f"aborted at {step.step}/{step.steps}"),
                ("Analysis", " ".join(why.split())[:300]))
    planner = RollbackPlanner(None, f"rollout of v{step.version} aborted: {why}", actor, tracking=tracking,
                              gitops=gitops, trailers=trailers)
    intent = policy.Intent("rollback", model, env, dry_run=dry_run)
    try:
        applied = promotion.apply(ws, intent, planner, tracking=tracking, gitops=gitops)
    except PushConflict:  # another run wrote first: if it was this abort, the rollout is gone
        look = _look(ws, model, env, gitops, _STATE_ONLY)
        if look.step is None:
            return RolloutRecord(**base, action="none", reason=f"another run ended the rollout meanwhile; "
                                 f"{env} serves v{look.serving}")
        raise
    record = applied.record
    return RolloutRecord(**base, action="aborted", reason=(
        f"{'dry run: would have aborted' if dry_run else 'aborted'}: {why}; {env} serves v{record.version} again "
        f"(reverted {', '.join(s[:12] for s in record.reverted_commits)}) and {model} is on hold there "
        f"({record.hold_path})"), commit_sha=record.commit_sha, remote=gitops.url, branch=gitops.branch)


def abort(ws: Workspace, model: str, env: str, *, tracking: Tracking, gitops: GitOpsRemote, reason: str,
          actor: str = ACTOR, dry_run: bool = False) -> RolloutRecord:
    """Stop the rollout of ``model`` in ``env`` now: the steps reverted byte for byte, a hold written."""
    ws.model(model)
    env = ws.environment(env)
    look = _look(ws, model, env, gitops, _STATE_ONLY)
    if look.step is None:
        what = f"it serves v{look.serving}" if look.serving else "it serves no version of it"
        what += f"; {look.held}" if look.held else ""
        return RolloutRecord(model=model, env=env, action="none", reason=f"no rollout of {model} in {env}: {what}",
                             version=look.serving)
    step = look.step
    base = {"model": model, "env": env, "version": step.version, "primary": step.primary, "step": step.describe(),
            "dry_run": dry_run, "source_commit": look.source_commit, "step_number": step.step, "steps": step.steps,
            "canary_percent": step.canary}
    return _abort(ws, model, env, step, f"by {actor}: {' '.join(reason.split())}", tracking=tracking,
                  gitops=gitops, dry_run=dry_run, base=base, actor=actor)


__all__ = ["ACTOR", "abort", "advance"]

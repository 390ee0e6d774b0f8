"""What each commit of a rollout writes: its first step (from a promotion), the next steps and the
full promotion (from ``rollout advance``), each through the one promotion path.

    promote  -> start_files: step 1 (the candidate as a canary beside the version served now)
    advance  -> StepPlanner: step n+1, or the full promotion (the alias moves then, and only then)
    abort    -> mlops_ci.stages.rollback's revert of every step, with a hold

Every step commit carries the trailers of a promotion of the candidate (``Model-Version``: the
version rolled out) plus ``Rollout-Of``, ``Rollout-Step`` and the ``Analysis`` that allowed it, so
that the abort (a rollback revert of the commits that set the current version) restores exactly
the bytes from before the first step. The state itself is the manifest's annotation
(mlops_ci.serving.canary); a plan whose state moved under it (another ``advance`` won the race)
writes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from mlops_ci import lineage, policy
from mlops_ci.backends.gitops import GitOpsRemote, changeset
from mlops_ci.backends.gitops.base import Checkout
from mlops_ci.backends.tracking import Tracking
from mlops_ci.errors import PromotionError
from mlops_ci.records import PromotionRecord
from mlops_ci.serving import canary, hold, layout
from mlops_ci.serving.kserve import ServedVersion
from mlops_ci.stages.candidate import Candidate, candidate_from_registry
from mlops_ci.stages.policy_facts import order_and_freezes
from mlops_ci.workspace import Workspace


def workload(ws: Workspace, env: str, model: str) -> str:
    return layout.workload_path(ws.config.gitops.path, env, model, ws.model(model).serving)


def start_files(ws: Workspace, co: Checkout, served: ServedVersion,
                now: datetime | None = None) -> tuple[dict[str, bytes | None], canary.Step] | None:
    """The files that start a rollout of ``served`` (its first step), or None where a promotion swaps
    the version whole: an environment without a rollout, nothing served yet, or the same version.
    A rollout of this version in progress: no change. Of another version: refused."""
    env, model = served.env, served.model
    plan = ws.config.environments[env].rollout
    if plan is None:
        return None
    path = workload(ws, env, model)
    current = co.read(path)
    running = canary.state(current)
    if running is not None:
        if running.version == served.version:
            return {}, running
        raise PromotionError(f"a rollout of {model} v{running.version} in {env} is at {running.describe()}: "
                             f"v{served.version} cannot start beside it",
                             hint=f"let it complete, or stop it with `mlops-ci rollout abort --model {model} --env {env} "
                                  "--reason TEXT`, then promote again")
    primary = canary.serving_version(current)
    if current is None or primary is None or primary == served.version:
        return None
    serving = ws.model(model).serving
    mode = canary.deployment_mode(current)
    if mode and mode != serving.deployment_mode:  # a canary needs the primary served the way it will be split
        raise PromotionError(f"{env} serves {model} v{primary} in {mode} mode and the config now says "
                             f"{serving.deployment_mode}: a canary of v{served.version} cannot go beside it (KServe "
                             f"splits traffic between {serving.deployment_mode} predictors only)",
                             hint=f"first promote the version served, in the new mode (`mlops-ci promote --model {model} "
                                  f"--env {env} --version {primary}`: it re-renders v{primary} whole), then promote "
                                  f"v{served.version}")
    first = plan.steps[0]
    step = canary.Step(version=served.version, primary=primary, step=1, steps=len(plan.steps), canary=first.canary,
                       started=(now or datetime.now(UTC)).isoformat(timespec="seconds"))
    files = layout.render_files(ws.config.gitops.path, served, serving, co.read, rollout=True)
    files[path] = canary.render_step(current, served, serving, step)  # type: ignore[arg-type]
    return files, step


LINEAGE_TRAILERS = {"Source-Commit": "source-commit", "Source-PR": "source-pr", "Trained-At": "trained-at",
                    "Features-Commit": "features-commit", "Feature-Service": "feature-service"}


def started_with(co: Checkout, path: str, version: str) -> dict[str, str]:
    """The lineage the rollout of ``version`` started with: the trailers of its first step's commit
    (the promotion's: the commit that was merged, its pull request, where it was trained), so that
    every later step, the completion and the Deployment's end name the same source as the start."""
    first = None
    for entry in co.log([path]):
        if entry.trailer("Rollout-Of") != version:
            break
        first = entry
    if first is None:
        return {}
    return {key: first.trailer(trailer) or "" for trailer, key in LINEAGE_TRAILERS.items()}


def step_trailers(step: canary.Step | None, *, completed: bool = False, analysis: str = "",
                  version: str = "") -> list[tuple[str, str]]:
    if step is None:
        return []
    where = "complete" if completed else f"{step.step}/{step.steps} ({step.canary}%)"
    return [("Rollout-Of", version or step.version), ("Rollout-Step", where),
            ("Analysis", " ".join(analysis.split())[:300])]


class StepPlanner:
    """What advancing a rollout from ``expected`` writes: the next step, or the full promotion (a
    :class:`promotion.Planner`). Planned again after a lost push race: if the state moved, nothing."""

    replans = True

    def __init__(self, ws: Workspace, expected: canary.Step, analysis: str, *, tracking: Tracking,
                 gitops: GitOpsRemote, actor: str = "mlops-ci rollout") -> None:
        self.ws, self.expected, self.analysis, self.tracking, self.actor = ws, expected, analysis, tracking, actor
        self.remote, self.url, self.branch = f"{gitops.url} ({gitops.branch})", gitops.url, gitops.branch
        self.candidate: Candidate | None = None
        self.next: canary.Step | None = None  # None: the full promotion
        self.moved: canary.Step | None = None  # the state found instead of ``expected`` (None: as expected)
        self.intent: policy.Intent | None = None

    @property
    def completes(self) -> bool:
        return self.expected.step >= self.expected.steps

    def facts(self, ws: Workspace, co: Checkout, intent: policy.Intent) -> policy.Facts:
        self.intent = intent
        model, version = intent.model, self.expected.version
        found = candidate_from_registry(self.tracking, model, version)
        started = started_with(co, workload(ws, intent.env, model), version)
        lineage_ = {k: v for k, v in {**found.lineage, **started}.items() if v}
        self.candidate = replace(found, lineage=lineage_)
        hold_file = hold.path(ws.config.gitops.path, intent.env, model)
        held = co.read(hold_file)
        parsed = hold.parse(held) if held is not None else None
        facts = policy.Facts(gates_passed=True, run_id=None, remote=self.remote,
                             hold_path=hold_file if held is not None else None,
                             hold_text=parsed.describe() if parsed else None)
        return order_and_freezes(ws, co, intent, model, version, facts)

    def prepare(self, decision: policy.Decision) -> str | None:
        return None

    def files(self, ws: Workspace, co: Checkout, intent: policy.Intent, since: str | None) -> dict[str, bytes | None]:
        path = workload(ws, intent.env, intent.model)
        current = co.read(path)
        found = canary.state(current)
        if found != self.expected or current is None:
            self.moved = found or self.expected
            return {}
        c = self.candidate
        assert c is not None
        lineage_ = dict(c.lineage)
        if intent.force_reason:
            lineage_["forced-reason"] = " ".join(intent.force_reason.split())[:200]
        served = ServedVersion(model=c.model, version=c.version, artifact_uri=c.artifact_uri, digest=c.digest,
                               env=intent.env, namespace=ws.config.environments[intent.env].namespace,
                               lineage=lineage_)
        serving = ws.model(intent.model).serving
        files = layout.render_files(ws.config.gitops.path, served, serving, co.read, rollout=True)
        if not self.completes:
            plan = ws.config.environments[intent.env].rollout
            assert plan is not None
            upcoming = plan.steps[min(self.expected.step, len(plan.steps) - 1)]
            self.next = replace(self.expected, step=self.expected.step + 1, canary=upcoming.canary,
                                steps=len(plan.steps), started=datetime.now(UTC).isoformat(timespec="seconds"))
            files[path] = canary.render_step(current, served, serving, self.next)  # type: ignore[arg-type]
        return dict(files)

    def what(self) -> str:
        where = f"{self.intent.model} in {self.intent.env}" if self.intent else "a model"
        return f"advancing the rollout of {where} (v{self.expected.version})"

    def message(self, decision: policy.Decision) -> str:
        c, intent = self.candidate, self.intent
        assert c is not None and intent is not None
        alias = self.ws.config.alias_for(intent.env)
        pairs = [("Model", c.model), ("Model-Version", c.version), ("Environment", intent.env),
                 ("MLflow-Alias", alias if self.completes else ""), ("Model-Digest", c.digest),
                 ("MLflow-Run-Id", c.lineage.get("run-id", "")), ("Source-Commit", c.lineage.get("source-commit", "")),
                 ("Source-PR", c.lineage.get("source-pr", "")),
                 ("Features-Commit", c.lineage.get("features-commit", "")),
                 ("Feature-Service", c.lineage.get("feature-service", "")),
                 *step_trailers(self.next or self.expected, completed=self.completes, analysis=self.analysis,
                                version=c.version),
                 ("Forced-Reason", " ".join((intent.force_reason or "").split())[:200]),
                 *[(f"{r.rule.capitalize()}-Overridden", " ".join((r.detail or r.message).split())[:300])
                   for r in decision.overridden if r.rule in ("freeze", "order", "hold")],
                 ("Advanced-By", self.actor)]
        if self.completes:
            subject = f"complete rollout of {c.model} v{c.version} in {intent.env}"
            body = f"v{c.version} serves all traffic (was beside v{self.expected.primary})."
        else:
            assert self.next is not None
            subject = f"rollout {c.model} v{c.version} in {intent.env}: step {self.next.step}/{self.next.steps}"
            body = f"v{c.version} takes {self.next.canary}% of the traffic beside v{self.expected.primary}."
        return f"{subject}\n\n{body}\n\n{lineage.trailers(pairs)}\n"

    def record(self, cs: changeset.ChangeSet, decision: policy.Decision, co: Checkout) -> PromotionRecord:
        c, intent = self.candidate, self.intent
        assert c is not None and intent is not None
        return PromotionRecord(model=c.model, env=intent.env, alias=self.ws.config.alias_for(intent.env),
                               version=c.version, artifact_uri=c.artifact_uri, digest=c.digest,
                               dry_run=intent.dry_run, noop=cs.noop, changes=cs.changes, remote=self.url,
                               branch=self.branch, base_commit=cs.base, commit_sha=cs.base if cs.noop else None,
                               forced_reason=intent.force_reason)

    def alias(self) -> tuple[str, str, str] | None:
        if not self.completes or self.moved is not None:
            return None
        c = self.candidate
        assert c is not None
        return (c.version, f"the rollout of {c.model} v{c.version} is complete in the GitOps repository",
                (f"run `mlops-ci promote --model {c.model} --env {self.intent.env if self.intent else ''} "
                f"--version {c.version}`: git is a no-op and the alias moves"))


__all__ = ["StepPlanner", "start_files", "started_with", "step_trailers", "workload"]

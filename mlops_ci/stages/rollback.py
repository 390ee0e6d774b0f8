"""Rollback stage: restore the version an environment served before, hold it there, move the alias back.

    history -> restore -> hold marker -> policy -> change set -> (dry run: stop) -> commit with trailers
            -> push -> alias

The write is the one promotion path (mlops_ci.stages.promotion); this module plans what a
rollback and the release of its hold write.

Without a version, the GitOps history decides: the commits that set the current version (trailers
``Model``, ``Environment``, ``Model-Version``) are reverted for the model's manifest files only, so
those files get back exactly the bytes they had before. If any other commit changed those files
since, exact restoration is ambiguous and the rollback stops, naming the commits. A rollback
commit sets a version too, so rolling back twice undoes the first rollback (as `helm rollback`
does). With a version (``--to``), that registry version is rendered as a promotion would render
it; a version without a passing evaluation is allowed and recorded (``gates_passed``).

The same commit writes a hold marker (`mlops_ci.serving.hold`) that stops automatic promotion
until `clear_hold` removes it. As in promote, the alias moves only after the push landed.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from mlops_ci import lineage, policy, registry
from mlops_ci.backends.gitops import GitOpsRemote, changeset
from mlops_ci.backends.gitops.base import Checkout, HistoryEntry
from mlops_ci.backends.tracking import Tracking
from mlops_ci.errors import PromotionError
from mlops_ci.records import RollbackRecord
from mlops_ci.serving import hold, kserve, layout
from mlops_ci.stages import promotion
from mlops_ci.stages.candidate import candidate_from_registry
from mlops_ci.stages.policy_facts import order_and_freezes
from mlops_ci.workspace import Workspace


@dataclass(frozen=True)
class _Plan:
    action: str  # "revert" or "re-pin"
    version: str
    rollback_of: str
    files: dict[str, bytes | None]  # new contents of the manifest files (None: delete)
    artifact_uri: str
    digest: str
    gates_passed: bool
    reverted: tuple[HistoryEntry, ...] = ()


def _feature_lineage(tracking: Tracking, model: str, version: str) -> dict[str, str]:
    """The feature repository's commit and the service version ``version`` was trained with (its tags)."""
    try:
        tags = tracking.get_version(model, version).tags
    except Exception:  # a version the registry no longer has: the rollback still restores the manifests
        return {}
    found = lineage.of_version(tags, None)
    return {k: found[k] for k in ("features-commit", "feature-service") if k in found}


def _version_commits(history: list[HistoryEntry], model: str, env: str) -> list[tuple[HistoryEntry, str]]:
    """The commits that set a version of ``model`` in ``env`` (promotions and rollbacks), newest first."""
    return [(e, e.trailer("Model-Version") or "") for e in history
            if e.trailer("Model") == model and e.trailer("Environment") == env and e.trailer("Model-Version")]


def _plan_revert(ws: Workspace, co: Checkout, gitops: GitOpsRemote, model: str, env: str,
                 history: list[HistoryEntry], tracking: Tracking) -> _Plan:
    where = f"{gitops.url} ({gitops.branch})"
    served = _version_commits(history, model, env)
    if not served:
        raise PromotionError(f"no promotion of {model} to {env} in the history of {where}: nothing to roll back",
                             hint=f"promote a version with `mlops-ci promote --model {model} --env {env} --version N`")
    current = served[0][1]
    run = []  # the newest commits that all set the current version
    for entry, version in served:
        if version != current:
            break
        run.append(entry)
    older = served[len(run):]
    first = run[-1]
    if not older or first.parent is None:
        raise PromotionError(f"{model} has no version before v{current} in {env}: {first.sha[:12]} "
                             f"({first.subject!r}) is its first promotion in {where}",
                             hint=f"pass --to VERSION to pin a registry version of {model}")
    run_shas = {e.sha for e in run}
    paths = sorted({p for e in run for p in e.paths})
    newer = history[:history.index(first)]
    others = [e for e in newer if e.sha not in run_shas and set(e.paths) & set(paths)]
    if others:
        raise PromotionError(
            f"cannot restore {', '.join(paths)} exactly to what they were before {model} v{current} "
            f"({first.sha[:12]}): later commits changed them too: "
            + ", ".join(f"{e.sha[:12]} {e.subject!r}" for e in others),
            hint=f"pass --to {older[0][1]} to render v{older[0][1]} on top of those changes")
    files = {p: co.show(first.parent, p) for p in paths}
    isvc = layout.workload_path(ws.config.gitops.path, env, model, ws.model(model).serving)
    pinned = layout.pinned(files[isvc] if isvc in files else co.read(isvc))
    if pinned is None:
        raise PromotionError(f"before {first.sha[:12]} ({first.subject!r}) {isvc} pinned no version of {model} "
                             f"in {where}: nothing to restore",
                             hint=f"pass --to VERSION to pin a registry version of {model}")
    version, artifact_uri, digest = pinned
    mv = tracking.get_version(model, version)  # the alias must be able to follow: fail before committing
    return _Plan(action="revert", version=version, rollback_of=current, files=files,
                 artifact_uri=artifact_uri or mv.artifact_uri, digest=digest or mv.tags.get(registry.DIGEST, ""),
                 gates_passed=registry.passed(mv.tags), reverted=tuple(run))


def _plan_repin(ws: Workspace, co: Checkout, gitops: GitOpsRemote, model: str, env: str, to: str,
                history: list[HistoryEntry], tracking: Tracking) -> _Plan:
    root = ws.config.gitops.path
    served = _version_commits(history, model, env)
    isvc = layout.workload_path(root, env, model, ws.model(model).serving)
    pinned = layout.pinned(co.read(isvc))
    current = pinned[0] if pinned else served[0][1] if served else None
    if current is None:
        raise PromotionError(f"{env} serves no version of {model} in {gitops.url} ({gitops.branch}): "
                             "nothing to roll back",
                             hint=f"promote it with `mlops-ci promote --model {model} --env {env} --version {to}`")
    candidate = candidate_from_registry(tracking, model, to)
    if candidate.version == current:
        return _Plan(action="re-pin", version=current, rollback_of=current, files={},
                     artifact_uri=candidate.artifact_uri, digest=candidate.digest,
                     gates_passed=candidate.gates_passed)
    envcfg = ws.config.environments[env]
    restored = {**candidate.lineage, "rollback-of": current}
    version = kserve.ServedVersion(model=model, version=candidate.version, artifact_uri=candidate.artifact_uri,
                                   digest=candidate.digest, env=env, namespace=envcfg.namespace, lineage=restored)
    files: dict[str, bytes | None] = dict(layout.render_files(root, version, ws.model(model).serving, co.read))
    return _Plan(action="re-pin", version=candidate.version, rollback_of=current, files=files,
                 artifact_uri=candidate.artifact_uri, digest=candidate.digest, gates_passed=candidate.gates_passed)


def commit_message(model: str, env: str, alias: str, plan: _Plan, hold_file: str, actor: str,
                   reason: str | None, extra: tuple[tuple[str, str], ...] = ()) -> str:
    if plan.action == "revert":
        what = "Restore the manifests as they were before " + ", ".join(e.sha[:12] for e in plan.reverted) + "."
    else:
        what = f"Serve {plan.artifact_uri}."
    trailers = [("Model", model), ("Model-Version", plan.version), ("Environment", env), ("MLflow-Alias", alias),
                ("Model-Digest", plan.digest), ("Rollback-Of", plan.rollback_of),
                ("Reverts", ", ".join(e.sha for e in plan.reverted)), ("Reason", hold.one_line(reason)),
                ("Held-By", actor), *extra]
    body = "\n".join(f"{k}: {v}" for k, v in trailers if v)
    return (f"rollback {model} to v{plan.version} in {env} (from v{plan.rollback_of})\n\n{what}\n"
            f"Automatic promotion is on hold until {hold_file} is removed.\n\n{body}\n")


class RollbackPlanner:
    """What rolling ``model`` back in an environment writes (a :class:`promotion.Planner`)."""

    replans = False

    def __init__(self, to: str | None, reason: str | None, actor: str, *, tracking: Tracking,
                 gitops: GitOpsRemote, trailers: tuple[tuple[str, str], ...] = ()) -> None:
        self.to, self.reason, self.actor, self.tracking, self.gitops = to, reason, actor, tracking, gitops
        self.trailers = trailers  # more of them (an aborted rollout's)
        self.plan: _Plan | None = None
        self.hold_file = ""
        self.alias_name = ""
        self.planned: dict[str, bytes | None] = {}
        self._model = self._env = ""
        self.features: dict[str, str] = {}  # the restored version's feature lineage

    def facts(self, ws: Workspace, co: Checkout, intent: policy.Intent) -> policy.Facts:
        self._model, self._env = model, env = intent.model, intent.env
        root = ws.config.gitops.path
        self.hold_file, self.alias_name = hold.path(root, env, model), ws.config.alias_for(env)
        history = co.log([layout.model_dir(root, env, model), posixpath.join(root, env, "kustomization.yaml")],
                         exclude=[self.hold_file])
        if self.to is None:
            self.plan = _plan_revert(ws, co, self.gitops, model, env, history, self.tracking)
        else:
            self.plan = _plan_repin(ws, co, self.gitops, model, env, str(self.to), history, self.tracking)
        plan = self.plan
        self.features = _feature_lineage(self.tracking, model, plan.version)
        files = dict(plan.files)
        noop = not any(co.read(p) != data for p, data in files.items()) and co.read(self.hold_file) is not None
        if plan.rollback_of == plan.version and not noop:
            raise PromotionError(f"{env} already serves {model} v{plan.version}: nothing to roll back",
                                 hint="pass --to VERSION with another version")
        if not noop:
            files[self.hold_file] = hold.render(hold.new(model, env, plan.version, plan.rollback_of, self.actor,
                                                         self.reason))
        self.planned = files
        held = co.read(self.hold_file)
        facts = policy.Facts(gates_passed=plan.gates_passed, run_id=None,
                             hold_path=self.hold_file if held is not None else None,
                             remote=f"{self.gitops.url} ({self.gitops.branch})")
        if self.to is not None:  # a version this environment never served is judged like a promotion
            facts = order_and_freezes(ws, co, intent, model, plan.version, facts)
        return facts

    def prepare(self, decision: policy.Decision) -> str | None:
        return None

    def files(self, ws: Workspace, co: Checkout, intent: policy.Intent, since: str | None) -> dict[str, bytes | None]:
        return self.planned

    def what(self) -> str:
        assert self.plan is not None
        return f"rolling back {self._model} in {self._env} to v{self.plan.version}"

    def message(self, decision: policy.Decision) -> str:
        assert self.plan is not None
        return commit_message(self._model, self._env, self.alias_name, self.plan, self.hold_file, self.actor,
                              self.reason, (*self.trailers, ("Features-Commit", self.features.get("features-commit", "")),
                                            ("Feature-Service", self.features.get("feature-service", ""))))

    def record(self, cs: changeset.ChangeSet, decision: policy.Decision, co: Checkout) -> RollbackRecord:
        plan = self.plan
        assert plan is not None
        return RollbackRecord(model=self._model, env=self._env, alias=self.alias_name, action=plan.action,
                              version=plan.version, rollback_of=plan.rollback_of,
                              reverted_commits=[e.sha for e in plan.reverted], artifact_uri=plan.artifact_uri,
                              digest=plan.digest, gates_passed=plan.gates_passed,
                              reason=hold.one_line(self.reason) or None, actor=self.actor, hold_path=self.hold_file,
                              dry_run=decision.intent.dry_run, noop=cs.noop, changes=cs.changes,
                              remote=self.gitops.url, branch=self.gitops.branch, base_commit=cs.base,
                              commit_sha=None if not cs.noop else cs.base,
                              features_commit=self.features.get("features-commit") or None,
                              feature_service=self.features.get("feature-service") or None)

    def alias(self) -> tuple[str, str, str]:
        plan = self.plan
        assert plan is not None
        return (plan.version, f"{self._model} v{plan.version} is restored in the GitOps repository",
                f"run `mlops-ci rollback --model {self._model} --env {self._env} --to {plan.version}`: "
                "git is a no-op and the alias moves")


def rollback(
    ws: Workspace,
    model: str,
    env: str,
    *,
    tracking: Tracking,
    gitops: GitOpsRemote,
    to: str | None = None,
    reason: str | None = None,
    actor: str = "unknown",
    dry_run: bool = False,
) -> RollbackRecord:
    """Restore the previous version (or ``to``) of ``model`` in ``env``, hold it there, move the alias back."""
    ws.model(model)  # a model name is never used as a path before it matched the config
    intent = policy.Intent("rollback", model, ws.environment(env), version=to, dry_run=dry_run)
    planner = RollbackPlanner(to, reason, actor, tracking=tracking, gitops=gitops)
    return promotion.apply(ws, intent, planner, tracking=tracking, gitops=gitops).record


class ClearHoldPlanner:
    """What releasing a hold writes: the marker deleted, in a commit (a :class:`promotion.Planner`)."""

    replans = False

    def __init__(self, reason: str | None, actor: str, *, gitops: GitOpsRemote) -> None:
        self.reason, self.actor, self.gitops = reason, actor, gitops
        self.hold_file, self.version, self.intent = "", None, None

    def facts(self, ws: Workspace, co: Checkout, intent: policy.Intent) -> policy.Facts:
        self.intent = intent
        self.hold_file = hold.path(ws.config.gitops.path, intent.env, intent.model)
        self.alias_name = ws.config.alias_for(intent.env)
        data = co.read(self.hold_file)
        if data is None:
            raise PromotionError(f"{intent.model} is not on hold in {intent.env}: {self.hold_file} does not exist in "
                                 f"{self.gitops.url} ({self.gitops.branch})", hint="nothing to clear")
        held = hold.parse(data)
        self.version = held.version if held else None
        return policy.Facts(hold_path=self.hold_file, hold_text=held.describe() if held else None,
                            remote=f"{self.gitops.url} ({self.gitops.branch})")

    def prepare(self, decision: policy.Decision) -> str | None:
        return None

    def files(self, ws: Workspace, co: Checkout, intent: policy.Intent, since: str | None) -> dict[str, bytes | None]:
        return {self.hold_file: None}

    def what(self) -> str:
        return f"releasing the hold on {self.intent.model} in {self.intent.env}"

    def message(self, decision: policy.Decision) -> str:
        model, env = self.intent.model, self.intent.env
        trailers = [("Model", model), ("Environment", env), ("Hold-Released", self.version or ""),
                    ("Reason", hold.one_line(self.reason)), ("Released-By", self.actor)]
        body = "\n".join(f"{k}: {v}" for k, v in trailers if v)
        return f"release hold on {model} in {env}\n\nAutomatic promotion resumes.\n\n{body}\n"

    def record(self, cs: changeset.ChangeSet, decision: policy.Decision, co: Checkout) -> RollbackRecord:
        return RollbackRecord(model=self.intent.model, env=self.intent.env, alias=self.alias_name,
                              action="clear-hold", version=self.version, reason=hold.one_line(self.reason) or None,
                              actor=self.actor, hold_path=self.hold_file, dry_run=decision.intent.dry_run,
                              changes=cs.changes, remote=self.gitops.url, branch=self.gitops.branch,
                              base_commit=cs.base)

    def alias(self) -> None:
        return None


def clear_hold(
    ws: Workspace,
    model: str,
    env: str,
    *,
    gitops: GitOpsRemote,
    reason: str | None = None,
    actor: str = "unknown",
    dry_run: bool = False,
) -> RollbackRecord:
    """Remove the hold marker of ``model`` in ``env`` in a commit, so automatic promotion resumes."""
    ws.model(model)
    intent = policy.Intent("clear-hold", model, ws.environment(env), dry_run=dry_run)
    return promotion.apply(ws, intent, ClearHoldPlanner(reason, actor, gitops=gitops), tracking=None,
                           gitops=gitops).record

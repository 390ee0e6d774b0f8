"""Promote stage: pin a model version into the GitOps repository, then move the MLflow alias.

    resolve -> policy -> (a forced candidate registered) -> render -> change set -> (dry run: stop)
            -> commit with trailers -> push (or propose) -> alias

What is promoted is resolved to fixed facts (version, artifact URI, digest) before anything is
rendered (mlops_ci.stages.candidate). The write itself is the one promotion path
(mlops_ci.stages.promotion): the policy is asked once (gates and --force, holds, merged-only, how
it lands), and this module only plans what a promotion writes. Promoting the version already there
is a no-op commit-wise; the alias only moves after the push landed.

Concurrent promotions: the GitOps backend retries a rejected push after a rebase (the git backend
also merges two promotions' additions to an environment's kustomization.yaml). A push that still
conflicts is planned again on the new tip as long as only files the promotion re-renders moved: a
change to the model's own files since the first plan (another promotion or rollback of the same
model) is a real conflict and stops with PushConflict naming the files.
"""

from __future__ import annotations

from dataclasses import replace

from mlops_ci import lineage, policy
from mlops_ci.backends.gitops import GitOpsRemote, changeset
from mlops_ci.backends.gitops.base import Checkout
from mlops_ci.backends.tracking import Tracking
from mlops_ci.errors import PushConflict
from mlops_ci.records import PromotionRecord
from mlops_ci.serving import canary, hold, layout
from mlops_ci.serving.kserve import ServedVersion
from mlops_ci.stages import promotion, rollout_steps
from mlops_ci.stages.candidate import (
    Candidate,
    candidate_from_registry,
    register_forced,
    registered_run,
)
from mlops_ci.stages.policy_facts import order_and_freezes
from mlops_ci.workspace import Workspace


def commit_message(c: Candidate, env: str, alias: str, *, hold_overridden: str | None = None,
                   forced_reason: str | None = None, freeze_overridden: str | None = None,
                   order_overridden: str | None = None, rollout: canary.Step | None = None) -> str:
    pairs = [("Model", c.model), ("Model-Version", c.version), ("Environment", env), ("MLflow-Alias", alias),
             ("Model-Digest", c.digest), ("MLflow-Run-Id", c.lineage.get("run-id", "")),
             ("Source-Commit", c.lineage.get("source-commit", "")), ("Source-PR", c.lineage.get("source-pr", "")),
             ("Trained-At", c.lineage.get("trained-at", "")), ("Features-Commit", c.lineage.get("features-commit", "")),
             ("Feature-Service", c.lineage.get("feature-service", "")), ("Hold-Overridden", hold_overridden or ""),
             ("Freeze-Overridden", " ".join((freeze_overridden or "").split())[:300]),
             ("Order-Overridden", " ".join((order_overridden or "").split())[:300]),
             ("Forced-Reason", " ".join((forced_reason or "").split())[:200]),
             ("Failed-Gates", " ".join(c.gate_summary.split())[:300] if forced_reason and not c.gates_passed else ""),
             *rollout_steps.step_trailers(rollout)]
    body = lineage.trailers(pairs)
    if rollout is not None:
        pairs[3] = ("MLflow-Alias", "")  # it moves when the rollout completes
        return (f"start rollout of {c.model} v{c.version} in {env}: step 1/{rollout.steps}\n\n"
                f"v{c.version} ({c.artifact_uri}) takes {rollout.canary}% of the traffic beside "
                f"v{rollout.primary}.\n\n{lineage.trailers(pairs)}\n")
    return f"promote {c.model} v{c.version} to {env}\n\nServe {c.artifact_uri}\n\n{body}\n"


class PromotePlanner:
    """What promoting ``candidate`` to an environment writes (a :class:`promotion.Planner`)."""

    replans = True

    def __init__(self, ws: Workspace, candidate: Candidate, intent: policy.Intent, *, tracking: Tracking,
                 gitops: GitOpsRemote) -> None:
        self.ws, self.candidate, self.intent, self.tracking = ws, candidate, intent, tracking
        self.url, self.branch = gitops.url, gitops.branch
        self.remote = f"{gitops.url} ({gitops.branch})"
        self.notes: list[str] = []  # what happened before the write (a forced candidate registered)
        self.held: bytes | None = None
        self.rollout: canary.Step | None = None  # the rollout step this promotion starts (or found running)
        self.features = None  # the features applied to the environment first (features_apply.Applied)

    @property
    def hold_file(self) -> str:
        return hold.path(self.ws.config.gitops.path, self.intent.env, self.candidate.model)

    def facts(self, ws: Workspace, co: Checkout, intent: policy.Intent) -> policy.Facts:
        from mlops_ci.promotions import promote_via

        c = self.candidate
        self.held = co.read(self.hold_file)
        parsed = hold.parse(self.held) if self.held is not None else None
        facts = policy.Facts(registered=c.registered, gates_passed=c.gates_passed, gate_summary=c.gate_summary,
                             run_id=c.run_id, unmerged=c.unmerged,
                             hold_path=self.hold_file if self.held is not None else None,
                             hold_text=parsed.describe() if parsed else None, remote=self.remote,
                             configured_via=promote_via(ws.config, intent.env))
        return order_and_freezes(ws, co, intent, c.model, c.version, facts)

    def prepare(self, decision: policy.Decision) -> str | None:
        """A candidate whose gates failed is registered now (--force --reason), or the version its
        run was registered as before is reused. Then the features the model reads are applied to the
        environment's registry (mlops_ci.stages.features_apply): if that fails, nothing is committed."""
        note = self._register_forced()
        if note is None and not (self.intent.dry_run or self.intent.explain) and self.features is None:
            from mlops_ci.stages.features_apply import apply_for_promotion

            self.features = apply_for_promotion(self.ws, self.intent.env, self.candidate.model,
                                                trained_with=self.candidate.lineage.get("features-commit"),
                                                forced=bool(self.intent.force_reason))
            if self.features is not None:
                self.notes.append(self.features.describe())
        return note

    def _register_forced(self) -> str | None:
        c, intent = self.candidate, self.intent
        if c.registered:
            return None
        existing = registered_run(self.tracking, c.model, c.run_id or "")
        if existing is not None:
            self.candidate = replace(candidate_from_registry(self.tracking, c.model, existing.version),
                                     lineage=c.lineage)
            self.notes.append(f"run {c.run_id} was registered as {c.model} v{existing.version} before (override: "
                              f"{existing.tags.get('mlops_ci.override.reason') or 'none recorded'})")
            return None
        if intent.dry_run or intent.explain:
            return (f"would register run {c.run_id} as a new version of {c.model} although its gates failed "
                    f"({c.gate_summary}), recording the override ({intent.force_reason}), and promote it to "
                    f"{intent.env}")
        self.candidate, _ = register_forced(self.tracking, c, reason=intent.force_reason or "", actor=self.ws.actor())
        self.notes.append(f"registered {c.model} v{self.candidate.version} from run {c.run_id}: gates failed, "
                          f"override recorded ({intent.force_reason})")
        return None

    def files(self, ws: Workspace, co: Checkout, intent: policy.Intent, since: str | None) -> dict[str, bytes | None]:
        c = self.candidate
        env = intent.env
        served_lineage = dict(c.lineage)
        if intent.force_reason:
            served_lineage["forced-reason"] = intent.force_reason.strip().replace("\n", " ")[:200]
        served = ServedVersion(model=c.model, version=c.version, artifact_uri=c.artifact_uri, digest=c.digest,
                               env=env, namespace=ws.config.environments[env].namespace, lineage=served_lineage)
        root = ws.config.gitops.path
        started = rollout_steps.start_files(ws, co, served)
        if started is not None:  # the environment rolls versions out: this is the first step
            files, self.rollout = started
        else:
            self.rollout = None
            files = layout.render_files(root, served, ws.model(c.model).serving, co.read,
                                        rollout=ws.config.environments[env].rollout is not None)
        if since is not None:
            folder = layout.model_dir(root, env, c.model) + "/"
            self._unchanged_since(co, since, [p for p in files if p.startswith(folder)] + [self.hold_file])
        return dict(files)

    def _unchanged_since(self, co: Checkout, since: str, paths: list[str]) -> None:
        """On a re-plan, the model's own files must be as the first plan saw them: otherwise another
        promotion or rollback of this model landed meanwhile, and this one would silently replace it."""
        moved = [p for p in paths if co.show(since, p) != co.read(p)]
        if moved:
            c = self.candidate
            raise PushConflict(f"GitOps conflict in {', '.join(moved)}: {self.remote} moved to "
                               f"{(co.head or '?')[:12]} with a change to {c.model} in {self.intent.env} while "
                               f"v{c.version} was being pushed", hint="re-run the promotion to plan against the new state")

    def what(self) -> str:
        return f"promoting {self.candidate.model} v{self.candidate.version} to {self.intent.env}"

    def message(self, decision: policy.Decision) -> str:
        return commit_message(self.candidate, self.intent.env, self.ws.config.alias_for(self.intent.env),
                              rollout=self.rollout,
                              hold_overridden=self.hold_file if self.held is not None else None,
                              forced_reason=self.intent.force_reason,
                              freeze_overridden=next((r.detail or r.message for r in decision.overridden
                                                      if r.rule == "freeze"), None),
                              order_overridden=next((r.detail or r.message for r in decision.overridden
                                                     if r.rule == "order"), None))

    def record(self, cs: changeset.ChangeSet, decision: policy.Decision, co: Checkout) -> PromotionRecord:
        c, env = self.candidate, self.intent.env
        return PromotionRecord(model=c.model, env=env, alias=self.ws.config.alias_for(env), version=c.version,
                               artifact_uri=c.artifact_uri, digest=c.digest,
                               dry_run=self.intent.dry_run or self.intent.explain, noop=cs.noop, changes=cs.changes,
                               remote=self.url, branch=self.branch, base_commit=cs.base,
                               commit_sha=cs.base if cs.noop else None, forced_reason=self.intent.force_reason,
                               on_hold=self.hold_file if self.held is not None else None,
                               held_by=[r.refusal for r in decision.blocking if r.rule != "hold"][:10],
                               rollout=self.rollout.describe() if self.rollout else None)

    def alias(self) -> tuple[str, str, str] | None:
        if self.rollout is not None:  # the alias moves when the rollout completes
            return None
        c = self.candidate
        return (c.version, f"manifests for {c.model} v{c.version} are committed",
                "re-run the same promote: git is a no-op and the alias moves")


def promote_candidate(ws: Workspace, candidate: Candidate, intent: policy.Intent, *, tracking: Tracking,
                      gitops: GitOpsRemote, proposals: promotion.Proposals | None = None,
                      raise_refused: bool = True) -> tuple[promotion.Applied, PromotePlanner]:
    """Promote ``candidate`` as ``intent`` asks: the one promotion path with this module's planner.
    Returns what was applied and the planner (its ``candidate`` after a forced registration, its ``notes``)."""
    ws.model(candidate.model)  # a model name is never used in a path before it matched the config
    intent = replace(intent, env=ws.environment(intent.env), model=candidate.model,
                     version=candidate.version or None)
    planner = PromotePlanner(ws, candidate, intent, tracking=tracking, gitops=gitops)
    applied = promotion.apply(ws, intent, planner, tracking=tracking, gitops=gitops, proposals=proposals,
                              raise_refused=raise_refused)
    return applied, planner


def promote(ws: Workspace, candidate: Candidate, env: str, *, tracking: Tracking, gitops: GitOpsRemote,
            dry_run: bool = False, force_reason: str | None = None) -> PromotionRecord:
    """Promote a registered ``candidate`` to ``env``, pushed to ``gitops`` (see the module docstring)."""
    intent = policy.Intent("promote", candidate.model, env, version=candidate.version, force_reason=force_reason,
                           via="push", dry_run=dry_run, allow_unmerged=True)
    applied, _ = promote_candidate(ws, candidate, intent, tracking=tracking, gitops=gitops)
    return applied.record


__all__ = ["PromotePlanner", "commit_message", "promote", "promote_candidate"]

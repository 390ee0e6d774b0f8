"""One path for every change to what an environment serves.

    apply(intent) = checkout -> facts -> policy -> (side effects it allows) -> files -> change set
                    -> validate -> (dry run: stop) -> commit with trailers -> push -> alias -> record

Promote, rollback and clearing a hold (and, through promote, ``--declared``, slash commands and
``--via-pr``) differ only in their :class:`Planner`: the facts the policy judges, the files, the
commit message, the record and the version the alias follows. Everything else is here once: the
policy is asked once per plan (mlops_ci.policy), the write is one change set
(mlops_ci.backends.gitops.changeset), the alias moves only after the push landed.

A promotion proposed as a pull request moves its alias when a later promote finds it merged, and
then only once an approver approved that pull request, where the environment lists approvers
(:func:`require_approval`).

A promotion whose push lost a race (PushConflict) is planned again on the new tip, with
jittered backoff, as long as only files the promotion re-renders moved: a change to the model's
own files since the first plan is a real conflict and stops, never a silent overwrite.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mlops_ci import policy, registry
from mlops_ci.backends.gitops import GitOpsRemote, changeset
from mlops_ci.backends.gitops.base import Checkout
from mlops_ci.backends.tracking import Tracking
from mlops_ci.errors import BackendError, PromotionError, PushConflict
from mlops_ci.serving import validate
from mlops_ci.workspace import Workspace

# plans of one promotion, each on a newer tip: every lost race is another change that landed,
# so N promoters at once need at most N plans
MAX_PLANS = 20
MAX_BACKOFF_S = 8.0

# where a promotion is proposed as a pull request: (env, model, version) -> a remote whose
# ``adopt(checkout)`` turns a checkout of the GitOps branch into one whose commit is proposed
Proposals = Callable[[str, str, str], Any]


class Planner(Protocol):
    """What one kind of change plans; called in this order, on one checkout."""

    replans: bool  # plan again on the new tip after a lost push race

    def facts(self, ws: Workspace, co: Checkout, intent: policy.Intent) -> policy.Facts: ...

    def prepare(self, decision: policy.Decision) -> str | None:
        """Side effects the decision allows before anything is rendered (registering a forced
        candidate); a message instead when a dry run stops here."""

    def files(self, ws: Workspace, co: Checkout, intent: policy.Intent, since: str | None) -> dict[str, bytes | None]:
        """The files the change sets (None deletes); ``since``: the tip of the first plan, on a re-plan."""

    def what(self) -> str: ...

    def message(self, decision: policy.Decision) -> str: ...

    def record(self, cs: changeset.ChangeSet, decision: policy.Decision, co: Checkout) -> Any: ...

    def alias(self) -> tuple[str, str, str] | None:
        """(version, what landed, hint) when the change moves the environment's alias: if the registry
        refuses after the push landed, the error says what landed and the hint how to move it again."""


@dataclass
class Applied:
    decision: policy.Decision
    record: Any = None  # PromotionRecord or RollbackRecord; None when a dry run stopped before rendering
    note: str | None = None  # what a dry run that stopped early would have done


class _LostRace(Exception):
    def __init__(self, conflict: PushConflict, base: str | None) -> None:
        super().__init__(conflict.message)
        self.conflict, self.base = conflict, base


def apply(ws: Workspace, intent: policy.Intent, planner: Planner, *, tracking: Tracking | None,
          gitops: GitOpsRemote, proposals: Proposals | None = None, raise_refused: bool = True) -> Applied:
    """Carry out ``intent`` as ``planner`` plans it (see the module docstring). ``tracking`` moves the
    alias (a change that moves none, such as releasing a hold, needs none). A change the policy
    refuses raises its error, or with ``raise_refused=False`` is returned undone (no record) for the
    caller to report in its own words."""
    since: str | None = None
    conflict: PushConflict | None = None
    for attempt in range(1, MAX_PLANS + 1):
        started = time.monotonic()
        try:
            return _apply_once(ws, intent, planner, tracking=tracking, gitops=gitops, proposals=proposals,
                               since=since, raise_refused=raise_refused)
        except _LostRace as lost:
            if not planner.replans:
                raise lost.conflict from None
            since = since if attempt > 1 else lost.base
            conflict = lost.conflict
        if attempt < MAX_PLANS:  # full jitter over a range doubling from the time the lost plan took
            took = max(0.05, time.monotonic() - started)
            time.sleep(random.uniform(0, min(MAX_BACKOFF_S, took * 2 ** (attempt - 1))))
    assert conflict is not None
    raise PushConflict(f"{planner.what()} was planned {MAX_PLANS} times and each push lost the race to another "
                       f"change: {conflict.message}", hint="the GitOps branch is busy; re-run the promotion") from conflict


def _apply_once(ws: Workspace, intent: policy.Intent, planner: Planner, *, tracking: Tracking | None,
                gitops: GitOpsRemote, proposals: Proposals | None, since: str | None,
                raise_refused: bool) -> Applied:
    root = ws.config.gitops.path
    with gitops.checkout() as co:
        decision = policy.evaluate(intent, planner.facts(ws, co, intent))
        if not raise_refused and not decision.allowed and not intent.explain:
            return Applied(decision)
        decision.enforce()
        note = planner.prepare(decision)
        if note is not None:
            return Applied(decision, note=note)
        cs = changeset.plan(co, planner.files(ws, co, intent, since))
        target: Checkout = co
        if decision.via == "pull_request" and cs.touched and not intent.dry_run and not intent.explain:
            if proposals is None:
                raise BackendError(f"{planner.what()} is to be proposed as a pull request, but no GitHub "
                                   "repository was given to open it in", hint="promote with --push")
            alias = planner.alias()
            target = proposals(intent.env, intent.model, alias[0] if alias else intent.version or "").adopt(co)

        skipped: list[str] = []

        def check(touched: dict[str, bytes | None], checkout: Checkout) -> None:
            report = validate.check(touched, root=root, env=intent.env, settings=validate.Settings.from_env(ws.env),
                                    checkout_dir=checkout.workdir, read=checkout.read, what=planner.what())
            skipped[:] = report.skipped

        try:
            commit = changeset.apply(target, cs, lambda: planner.message(decision), validate=check,
                                     dry_run=intent.dry_run or intent.explain)
        except PushConflict as err:  # apply() plans again on the new tip, or stops
            raise _LostRace(err, cs.base) from err
        record = planner.record(cs, decision, target)
        record.not_validated = skipped[:20]
        if commit is not None and not (intent.dry_run or intent.explain):
            record.commit_sha = commit
        proposal = target.proposal
        if proposal:
            record.pull_request, record.branch = proposal, target.branch
    alias = planner.alias()
    if intent.dry_run or intent.explain or alias is None or tracking is None or proposal:
        return Applied(decision, record)  # a proposal moves the alias once it is merged and served
    version, landed, hint = alias
    if decision.via == "pull_request" and proposals is not None and ws.config.environments[intent.env].policy.approvers:
        require_approval(tracking, intent, ws.config.alias_for(intent.env), version,
                         proposals(intent.env, intent.model, version))
    move_alias(tracking, intent.model, ws.config.alias_for(intent.env), version, intent.env, record.commit_sha,
               landed=landed, hint=hint)
    return Applied(decision, record)


def require_approval(tracking: Tracking, intent: policy.Intent, alias: str, version: str, remote: Any) -> None:
    """A promotion proposed as a pull request completes (its alias moves, it is reported shipped)
    only once an approver approved the pull request that merged it. Checked here, when the promote
    runs again and finds the change in place, because only then is there a merged pull request to
    read; an alias that already names the version completed before and is left alone."""
    current = tracking.version_by_alias(intent.model, alias)
    if current is not None and current.version == version:
        return
    approval = remote.approval()
    if approval is None or approval.approved:
        return
    where = f"approve {approval.pull_request} on GitHub" if approval.pull_request else "propose it with --via-pr"
    raise PromotionError(f"{intent.model} v{version} is merged into the GitOps branch for {intent.env}, but alias {alias!r} "
                         f"was not moved: {approval.why_not}",
                         hint=f"have one of them {where}, then re-run the same promote; a branch protection rule "
                              "requiring reviews on the GitOps branch makes GitHub ask for it before the merge")


def move_alias(tracking: Tracking, model: str, alias: str, version: str, env: str, commit_sha: str | None, *,
               landed: str, hint: str) -> None:
    """After the push landed: the environment's alias follows, and the version is tagged with the commit."""
    try:
        tracking.set_alias(model, alias, version)
        tracking.set_version_tags(model, version, {registry.deployed(env): commit_sha or ""})
    except BackendError as err:
        raise BackendError(f"{landed} ({(commit_sha or '')[:12]}) but the MLflow alias {alias!r} was not moved: "
                           f"{err.message}", hint=hint) from err


__all__ = ["MAX_PLANS", "Applied", "Planner", "apply", "move_alias", "require_approval"]

"""Whether a change to what an environment serves may happen, and how it lands: one evaluator.

    evaluate(intent, facts) -> Decision

Every path that writes to the GitOps repository asks once, before it writes: promote (from a run
record, a version, a pull request's pinned head), ``--declared``, rollback and clearing a hold.
The decision lists every reason (a rule that refuses, one that was overridden by ``--force
--reason`` and is recorded, a note) and how the change lands (pushed, or proposed as a pull
request). A rule that clears by itself says when (``not_before``), not only "no".

A rule is one small function ``(intent, facts) -> reasons``; :data:`RULES` is the list the
evaluator runs, in order. Adding a rule (a freeze window, an environment order, approvers) is
one function and one entry. Rules read only ``Intent`` and ``Facts``: they never do I/O, so
callers gather the facts (the registry's evaluation, the hold marker, git ancestry) first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from mlops_ci.errors import FatalError, GateFailed, PromotionError, UsageError

Action = Literal["promote", "rollback", "clear-hold"]
Route = Literal["push", "pull_request"]


@dataclass(frozen=True)
class Intent:
    """What someone asked for. ``force_reason``: ``promote --force --reason`` (or a declared
    entry's ``reason:``); ``via``: ``--via-pr``/``--push`` (None: as the environment is configured);
    ``explain``: plan and report even what the policy refuses (a pull request's plan of the
    promotions file), never write."""

    action: Action
    model: str
    env: str
    version: str | None = None
    force_reason: str | None = None
    allow_unmerged: bool = False
    via: Route | None = None
    dry_run: bool = False
    explain: bool = False
    # the rules ``force_reason`` may go past (None: every rule that can be forced); a declared
    # entry's ``reason:`` overrides the gates, never a hold
    overrides: frozenset[str] | None = None

    def forced(self, rule: str) -> bool:
        """Whether --force --reason (or its equivalent) goes past ``rule``."""
        return bool(self.force_reason) and (self.overrides is None or rule in self.overrides)


@dataclass(frozen=True)
class Facts:
    """What the rules judge, gathered by the caller before it writes."""

    registered: bool = True  # the candidate is a registry version (False: its gates failed, so it is not)
    gates_passed: bool = True
    gate_summary: str = ""
    run_id: str | None = None
    unmerged: tuple[str, str] | None = None  # (message, hint): the source commit is not on the default branch
    hold_path: str | None = None  # the hold marker in the environment, if there is one
    hold_text: str | None = None  # who holds which version, when and why
    remote: str = ""  # "url (branch)", for messages
    configured_via: Route = "push"  # the environment's promote_via (or its default)
    now: datetime | None = None
    # freezes holding the environment: (what, when it ends; None until someone removes it)
    freezes: tuple[tuple[str, datetime | None], ...] = ()
    # environment order: the environment the version must have been served in first, for how long,
    # and the spans (from, until; None: still) in which it was served there
    after: str | None = None
    soak: timedelta | None = None
    # a rollback --to a version this environment never served: the order and freeze rules judge it
    # as they judge a promotion (a rollback to what was served before is never stopped by them)
    ships_new: bool = False
    served_after: tuple[tuple[datetime, datetime | None, bool], ...] = ()  # (from, until, rolled back)


@dataclass(frozen=True)
class Reason:
    """One rule's finding. ``blocks``: it refuses the change; ``overridden``: it would have, and
    ``--force --reason`` went past it (recorded); ``shows_plan``: a dry run still renders the change
    (what a real run would refuse, e.g. a hold, is shown with it); ``not_before``: the rule clears by
    itself then; ``route``: how the change lands."""

    rule: str
    message: str
    blocks: bool = False
    hint: str | None = None
    error: type[FatalError] = PromotionError
    overridden: bool = False
    shows_plan: bool = False
    not_before: datetime | None = None
    route: Route | None = None
    planned_note: str | None = None  # what a dry run that plans past this refusal says about it
    detail: str | None = None  # the fact behind it in a few words (who holds which version, since when, why)

    @property
    def refusal(self) -> str:
        """One line for a dry run's output: what the real run would refuse."""
        return self.planned_note or self.message + (f" ({self.hint})" if self.hint else "")


@dataclass(frozen=True)
class Decision:
    intent: Intent
    reasons: tuple[Reason, ...] = field(default_factory=tuple)

    @property
    def allowed(self) -> bool:
        return not self.blocking

    @property
    def blocking(self) -> list[Reason]:
        return [r for r in self.reasons if r.blocks]

    @property
    def overridden(self) -> list[Reason]:
        return [r for r in self.reasons if r.overridden]

    @property
    def via(self) -> Route:
        routes = [r.route for r in self.reasons if r.route]
        return routes[-1] if routes else "push"

    def overrode(self, rule: str) -> bool:
        return any(r.rule == rule for r in self.overridden)

    def error(self, reason: Reason | None = None, also: list[Reason] | tuple[Reason, ...] = ()) -> FatalError:
        """The refusal of ``reason`` (default: the first), naming the ``also`` refusing after it: the
        change clears only when every one has (the latest "not before")."""
        r = reason or self.blocking[0]
        when = f" (not before {minute(r.not_before)})" if r.not_before else ""
        others = [o for o in also if o is not r]
        if not others:
            return r.error(r.message + when, hint=r.hint)
        more = "; ".join(o.message + (f" (not before {minute(o.not_before)})" if o.not_before else "") for o in others)
        return r.error(f"{r.message}{when}; and {more}", hint=r.hint)

    def enforce(self) -> None:
        """Raise the refusals, unless this is a dry run that still plans past them (a dry run
        of a change that a rule refuses outright raises like the real one)."""
        if self.intent.explain:
            return
        refusing = [r for r in self.blocking if not (self.intent.dry_run and r.shows_plan)]
        if refusing:
            raise self.error(refusing[0], also=refusing[1:])


Rule = Callable[[Intent, Facts], Iterable[Reason]]


# -- the rules -----------------------------------------------------------------------------------------------
def force_needs_reason(intent: Intent, facts: Facts) -> Iterable[Reason]:
    if intent.force_reason is not None and not intent.force_reason.strip():
        yield Reason("force", "--force needs a non-empty --reason", blocks=True, error=UsageError)


def registered(intent: Intent, facts: Facts) -> Iterable[Reason]:
    """A candidate whose gates failed never reached the registry: only --force --reason promotes it,
    by registering its run at promotion."""
    if intent.action != "promote" or facts.registered:
        return
    if intent.forced("registered"):
        yield Reason("registered", f"run {facts.run_id} is registered at promotion although its gates failed "
                     f"({facts.gate_summary}): {intent.force_reason}", overridden=True)
        return
    yield Reason("registered", f"{intent.model}: the candidate of run {facts.run_id} did not pass its gates "
                 f"({facts.gate_summary}) and is not registered", blocks=True, error=GateFailed,
                 hint="fix the model, or pass --force --reason TEXT to register and promote it anyway (recorded)")


def gates(intent: Intent, facts: Facts) -> Iterable[Reason]:
    """A version that did not pass its gates is promoted only with --force --reason; a rollback may
    restore one (it restores what was served), recorded."""
    if facts.gates_passed or not facts.registered:
        return
    what = f"{intent.model} v{intent.version} did not pass its gates" + (
        f" ({facts.gate_summary})" if facts.gate_summary else "")
    if intent.action == "rollback":
        yield Reason("gates", f"{intent.model} v{intent.version} carries no passing mlops-ci evaluation (recorded)")
    elif intent.action == "promote" and intent.forced("gates"):
        yield Reason("gates", f"{what}; promoted anyway: {intent.force_reason}", overridden=True)
    elif intent.action == "promote":
        yield Reason("gates", what, blocks=True, error=GateFailed,
                     hint="fix the model, or pass --force --reason TEXT to promote anyway (recorded)")


def merged_only(intent: Intent, facts: Facts) -> Iterable[Reason]:
    """What a run record names ships only once its commit is on the default branch (--force never
    lifts this; --allow-unmerged does, for a writer's /mlops-ci promote)."""
    if intent.action == "promote" and facts.unmerged and not intent.allow_unmerged:
        message, hint = facts.unmerged
        yield Reason("merged", message, blocks=True, hint=hint)


def holds(intent: Intent, facts: Facts) -> Iterable[Reason]:
    """A rollback's hold stops promotion of that model in that environment until it is cleared;
    --force --reason goes past it once (recorded). A dry run still plans the promotion."""
    if intent.action != "promote" or facts.hold_path is None:
        return
    if intent.forced("hold"):
        yield Reason("hold", f"{facts.hold_path} holds {intent.model} in {intent.env}; promoted past it: "
                     f"{intent.force_reason}", overridden=True)
        return
    from mlops_ci.serving.hold import clear_command

    yield Reason("hold", f"{intent.model} is on hold in {intent.env}"
                 + (f" ({facts.hold_text})" if facts.hold_text else "") + f": {facts.hold_path} exists in "
                 f"{facts.remote}", blocks=True, shows_plan=True, detail=facts.hold_text,
                 hint=f"release it with `{clear_command(intent.model, intent.env)}`, or pass --force --reason TEXT "
                      "to promote past it once (recorded)",
                 planned_note=f"{facts.hold_path} holds {intent.model} in {intent.env}: a real promote is refused "
                              f"without --force --reason (release it with `{clear_command(intent.model, intent.env)}`)")


def freezes(intent: Intent, facts: Facts) -> Iterable[Reason]:
    """A freeze (a window of the environment's policy, or a FREEZE file in its GitOps folder) stops
    promotions into it; rollbacks and releasing holds go on. --force --reason goes past it (recorded).
    A dry run (a pull request's plan) still renders, saying the freeze holds and when it clears."""
    if not _ships(intent, facts) or not facts.freezes:
        return
    what = "; ".join(text for text, _ in facts.freezes)
    ends = [until for _, until in facts.freezes]
    clears = None if None in ends else max(e for e in ends if e is not None)
    yield _unless_forced("freeze", intent, f"{intent.env} is frozen: {what}", shown=f"{intent.env} is frozen ({what})",
                         clears=clears, detail=what,
                         hint="wait until it clears" if clears is not None else "remove the FREEZE file to lift it")


def _unless_forced(rule: str, intent: Intent, message: str, *, shown: str, clears: datetime | None, detail: str,
                   hint: str) -> Reason:
    """A refusal that --force --reason goes past (recorded) and a dry run plans past, saying when it
    clears; ``shown``: the refusal as the forced and the planned notes name it."""
    if intent.forced(rule):
        return Reason(rule, f"{shown}; promoted anyway: {intent.force_reason}", overridden=True, detail=detail)
    return Reason(rule, message, blocks=True, shows_plan=True, not_before=clears, detail=detail,
                  hint=f"{hint}, or pass --force --reason TEXT to promote anyway (recorded)",
                  planned_note=f"{shown}: a real promote is refused" + (f" until {minute(clears)}" if clears else "")
                               + " without --force --reason")


def _ships(intent: Intent, facts: Facts) -> bool:
    """Whether the change puts a version into the environment that it did not serve before."""
    return intent.action == "promote" or (intent.action == "rollback" and facts.ships_new)


def minute(when: datetime) -> str:
    """``when`` to the minute, rounded up (a time shown as "not before" has not passed when shown)."""
    if when.second or when.microsecond:
        when = when.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return when.isoformat(timespec="minutes")


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 1440}d {minutes % 1440 // 60}h" if minutes >= 1440 else f"{minutes // 60}h {minutes % 60}m"


def order(intent: Intent, facts: Facts) -> Iterable[Reason]:
    """An environment with ``policy.after`` takes only a version served in that environment first,
    for at least ``policy.soak``; while it soaks there, the refusal says when it clears. A dry run
    still renders; --force --reason goes past (recorded)."""
    if not _ships(intent, facts) or facts.after is None:
        return
    now, need = facts.now or datetime.now(UTC), facts.soak or timedelta(0)
    spans = [(since, until) for since, until, rolled_back in facts.served_after if not rolled_back]
    longest = max(((until or now) - since for since, until in spans), default=None)
    if longest is not None and longest >= need:
        return
    soak = f" for {_span(need)}" if need else ""
    current = next((since for since, until in spans if until is None), None)
    who = f"{intent.model} v{intent.version}"
    if longest is None and facts.served_after:
        message, clears = f"{who} was rolled back out of {facts.after}, which {intent.env} comes after", None
    elif longest is None:
        message, clears = f"{who} was never served in {facts.after}, which {intent.env} comes after", None
    elif current is not None:
        message, clears = f"{who} has been served in {facts.after} for {_span(longest)}, not yet{soak}", current + need
    else:
        message, clears = f"{who} was served in {facts.after} for {_span(longest)} at most, not{soak}", None
    yield _unless_forced("order", intent, message, shown=message, clears=clears, detail=message,
                         hint=f"wait for it to soak in {facts.after}" if clears else
                         f"promote it to {facts.after} first" if not facts.served_after else
                         f"promote a version that soaked in {facts.after}")


def via(intent: Intent, facts: Facts) -> Iterable[Reason]:
    """A promotion is pushed to the GitOps branch or proposed as a pull request there: as asked
    (--via-pr, --push), else as the environment's promote_via says. Rollbacks are pushed."""
    if intent.action != "promote":
        return
    route = intent.via or facts.configured_via
    why = "asked" if intent.via else "the environment's promote_via"
    yield Reason("via", f"{'proposed as a pull request' if route == 'pull_request' else 'pushed'} ({why})",
                 route=route)


RULES: list[Rule] = [merged_only, registered, gates, force_needs_reason, holds, order, freezes, via]


def evaluate(intent: Intent, facts: Facts, rules: Iterable[Rule] | None = None) -> Decision:
    """Every rule's reasons, in order."""
    return Decision(intent, tuple(r for rule in (RULES if rules is None else rules) for r in rule(intent, facts)))


__all__ = ["RULES", "Decision", "Facts", "Intent", "Reason", "Rule", "evaluate"]

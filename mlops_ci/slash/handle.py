"""Answering a ``/mlops-ci`` command in a pull-request comment on GitHub (through mlops_ci.backends.github).

:func:`handle_comment` reads the ``issue_comment`` event (through :mod:`mlops_ci.context.github`),
leaves alone what is not a command (no request at all), then reads the author's permission
(``GET .../collaborators/{user}/permission``) and, for a command from a writer that parses, the
pull request (``GET .../pulls/{n}``: its head SHA, pinned now, and head repository). It answers
with a reaction on the comment and a new reply comment (never the sticky report comment), and
writes the step outputs, all through :class:`~mlops_ci.backends.github.issues.Conversation`:
reads retry, and the two writes are sent once (the reply is found by its hidden marker before it
is sent again). A promote or rollback into an environment with approvers who are teams reads the
author's team membership (mlops_ci.backends.github.approvals) when the author is not listed by name.
With ``dry_run`` it reads but sends nothing and writes no outputs.
PyGithub is imported only inside functions (``mlops-ci --help`` stays light).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_ci.backends.github.issues import Conversation
from mlops_ci.errors import InputError
from mlops_ci.github_actions import set_outputs
from mlops_ci.masking import mask
from mlops_ci.slash.grammar import (
    WRITE_PERMISSIONS,
    CommentEvent,
    Decision,
    PullFacts,
    SlashCommand,
    decide,
    empty_outputs,
    parse_command,
    reply_for,
    triage,
)

if TYPE_CHECKING:
    from github import Github


@dataclass
class Outcome:
    """What :func:`handle_comment` found and did."""

    event: CommentEvent
    ignored: str | None = None  # why the comment was left alone (nothing read or sent)
    decision: Decision | None = None
    unread: str | None = None  # dry run without a token: why GitHub was not read
    sent: bool = False
    reply_url: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.decision is not None and self.decision.accepted

    def summary(self) -> str:
        """One line for the log."""
        if self.ignored:
            return f"ignored: {self.ignored}"
        if self.decision is None:
            return f"not decided: {self.unread}"
        d = self.decision
        if d.accepted and d.command is not None and d.pull is not None:
            return f"accepted `{d.command.text()}` from {self.event.author}, pinned to {d.pull.head_sha}"
        return f"refused the command from {self.event.author}: {d.reason}"

    def describe(self) -> str:
        """What would be sent (``--dry-run``)."""
        where = f"{self.event.repository} PR #{self.event.pr_number}"
        if self.ignored:
            return f"would send nothing: {self.ignored}\noutputs: {_outputs_line(self.outputs)}"
        if self.decision is None:
            return (f"would read the permission of {self.event.author} and {where}, then answer comment "
                    f"{self.event.comment_id}; {self.unread}")
        d = self.decision
        return "\n".join([
            f"would react `{d.reaction}` to comment {self.event.comment_id} and reply on {where}:",
            "", mask(d.reply), "", f"outputs: {_outputs_line(self.outputs)}"])


def _outputs_line(outputs: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in outputs.items())


def comment_event(env: Mapping[str, str]) -> CommentEvent:
    """The ``issue_comment`` event of this GitHub Actions job (from ``GITHUB_EVENT_PATH``)."""
    from mlops_ci.context.github import dig, github_context, load_event

    if not env.get("GITHUB_EVENT_PATH"):
        raise InputError("GITHUB_EVENT_PATH is not set: `mlops-ci command` answers a GitHub "
                         "issue_comment event",
                         hint="run it in a workflow triggered `on: issue_comment: types: [created]`")
    name = env.get("GITHUB_EVENT_NAME", "")
    if name != "issue_comment":
        return CommentEvent(name, None, env.get("GITHUB_REPOSITORY"), None, None, None, None, "")
    context = github_context(env, default_branch="main")
    payload = load_event(env["GITHUB_EVENT_PATH"])
    comment_id = dig(payload, "comment", "id")
    return CommentEvent(
        event=name,
        action=payload.get("action") if isinstance(payload.get("action"), str) else None,
        repository=context.repository,
        pr_number=context.pr_number,
        comment_id=comment_id if isinstance(comment_id, int) and not isinstance(comment_id, bool) else None,
        author=context.actor if dig(payload, "comment", "user", "login") else None,
        author_type=dig(payload, "comment", "user", "type"),
        body=context.comment if isinstance(context.comment, str) else "",
    )


def decide_comment(event: CommentEvent, api: Conversation | None, *,
                   environments: Collection[str] | None = None,
                   find_candidate: Callable[[PullFacts], tuple[str, str]] | None = None,
                   approvers: Mapping[str, Collection[str]] | None = None,
                   member_of: Callable[[str, str], bool] | None = None) -> Outcome:
    """Read what the decision needs (nothing when the comment is not a command) and decide.
    ``member_of(team, login)`` reads a team membership, only for a writer not listed by name."""
    ignored = triage(event)
    if ignored:
        return Outcome(event, ignored=ignored, outputs=empty_outputs(event.pr_number))
    parsed = parse_command(event.body, environments)
    if parsed is None or not event.author or event.pr_number is None:  # triage checked them; never trust that
        return Outcome(event, ignored="the comment is not a command on a pull request",
                       outputs=empty_outputs(event.pr_number))
    if api is None:
        return Outcome(event, unread="no GITHUB_TOKEN, so GitHub was not read",
                       outputs=empty_outputs(event.pr_number))
    permission = api.permission(event.author)
    pull = None
    if permission in WRITE_PERMISSIONS and isinstance(parsed, SlashCommand):
        pull = api.pull(event.pr_number)
    decision = decide(event, parsed, permission=permission, pull=pull, environments=environments,
                      find_candidate=find_candidate, approvers=approvers, member_of=member_of)
    return Outcome(event, decision=decision, outputs=decision.outputs)


def answer(api: Conversation, outcome: Outcome) -> None:
    """React to the command's comment, then post the reply."""
    decision, event = outcome.decision, outcome.event
    if decision is None or event.pr_number is None or event.comment_id is None:
        raise InputError("there is no decided command to answer (the event has no pull request or comment id)")
    api.react(event.pr_number, event.comment_id, decision.reaction)
    comment_id = event.comment_id
    outcome.reply_url = api.reply(event.pr_number, mask(decision.reply),
                                  is_this_reply=lambda body: reply_for(body) == comment_id)
    outcome.sent = True


def handle_comment(env: Mapping[str, str] | None = None, *, environments: Collection[str] | None = None,
                   client: Github | None = None, dry_run: bool = False,
                   client_options: Mapping[str, Any] | None = None,
                   on_note: Callable[[str], None] | None = None,
                   find_candidate: Callable[[PullFacts], tuple[str, str]] | None = None,
                   approvers: Mapping[str, Collection[str]] | None = None) -> Outcome:
    """Answer the ``/mlops-ci`` command of this job's ``issue_comment`` event, if it has one.

    A refusal is an answer, not an error; :class:`~mlops_ci.backends.github.client.GitHubError` (exit 5) means
    GitHub failed, and then the outputs say ``accepted=false``."""
    env = os.environ if env is None else env
    event = comment_event(env)
    try:
        outcome = _handle(env, event, environments, client, dry_run, client_options or {}, find_candidate, approvers)
    except BaseException:
        if not dry_run:
            set_outputs(empty_outputs(event.pr_number), env=env)
        raise
    if on_note is not None:
        on_note(outcome.summary())
    if not dry_run:
        set_outputs(outcome.outputs, env=env)
    return outcome


def _handle(env: Mapping[str, str], event: CommentEvent, environments: Collection[str] | None,
            client: Github | None, dry_run: bool, client_options: Mapping[str, Any],
            find_candidate: Callable[[PullFacts], tuple[str, str]] | None = None,
            approvers: Mapping[str, Collection[str]] | None = None) -> Outcome:
    from mlops_ci.backends.github.approvals import Teams, teams_client
    from mlops_ci.backends.github.client import GitHubError, make_client

    if triage(event) is not None:
        return decide_comment(event, None, environments=environments)
    if not event.repository:
        raise GitHubError("no repository to answer in: GITHUB_REPOSITORY is not set and the event has none",
                          hint="set GITHUB_REPOSITORY=owner/name")
    if client is None and (not dry_run or env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")):
        client = make_client(env, **dict(client_options))  # no token: GitHubError naming the fix
    api = Conversation(client, event.repository) if client is not None else None
    teams = None
    if client is not None:
        made = client
        teams = Teams(teams_client(env, lambda: made)).is_member  # MLOPS_CI_TEAMS_TOKEN, else this client
    outcome = decide_comment(event, api, environments=environments, find_candidate=find_candidate,
                             approvers=approvers, member_of=teams)
    if not dry_run and api is not None and outcome.decision is not None:
        answer(api, outcome)
    return outcome


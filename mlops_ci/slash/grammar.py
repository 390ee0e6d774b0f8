"""Slash commands in pull-request comments: parsing and the decision, without talking to GitHub.

The grammar (one command, on the comment's first non-empty line)::

    /mlops-ci train [nodes=N] [gpus=G] [@SHA]   N in 1..64, G in 1..16, each at most once; @SHA on a fork
    /mlops-ci promote <env> @SHA                 SHA: the head commit the writer reviewed (7-40 hex)
    /mlops-ci rollback <env>

``<env>`` is one of the environments of ``.mlops-ci.yaml`` or, without a config, a name that
matches ``[a-z0-9][a-z0-9-]{0,31}``. Anything else is refused with the grammar. The comment
is untrusted: every token is matched whole against the grammar, nothing of it reaches a shell
or a path, and text quoted back is escaped with the report's Markdown escaping.

:func:`triage` says whether an event is ours to answer, :func:`parse_command` what it asks
and :func:`decide` what to answer, from the facts the GitHub backend reads (the author's
permission, the pull request's state and head). A promotion acts on the head its writer reviewed,
never on what the head became: ``promote`` names that head (``@SHA``) and is refused when the pull
request's head is another commit by the time the command is handled (a push seconds after the
comment is not promoted); ``train`` may name it too, and must on a fork's pull request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

from mlops_ci.backends.github.approvals import NOT_SEEN_NOTE, admitting, describe, team_of
from mlops_ci.backends.github.pulls import PullFacts  # what GitHub says of the pull request
from mlops_ci.render.report import code, esc

PREFIX = "/mlops-ci"
ACTIONS = ("train", "promote", "rollback")
WRITE_PERMISSIONS = ("admin", "write")  # GitHub reports the maintain role as "write", triage as "read"
NODES_RANGE = (1, 64)
GPUS_RANGE = (1, 16)
ENV_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
MAX_LINE = 200  # a longer first line is refused, and quoted back cut
QUOTE_LIMIT = 80
REPLY_MARKER = "<!-- mlops-ci:command comment={id} -->"  # not the report's marker: replies are new comments
_REPLY_MARKER = re.compile(r"<!-- mlops-ci:command comment=(\d+) -->")
_TRAIN_ARG = re.compile(r"(nodes|gpus)=([1-9][0-9]{0,2})")  # ASCII digits only, no sign, no leading 0
_SHA_ARG = re.compile(r"@([0-9a-f]{7,40})")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\t]")
ACCEPTED_REACTION = "rocket"
REFUSED_REACTION = "-1"  # not allowed: permission, a closed pull request
SYNTAX_REACTION = "confused"  # not understood

Action = Literal["train", "promote", "rollback"]


@dataclass(frozen=True)
class SlashCommand:
    """A command that parsed: what to do, with validated values only."""

    action: Action
    env: str | None = None  # promote and rollback
    nodes: int | None = None  # train; None: the config's default
    gpus: int | None = None
    sha: str | None = None  # the head the writer reviewed (a prefix of it): promote needs it

    def text(self) -> str:
        """The command as a canonical line (built from validated values, safe to show)."""
        at = [f"@{self.sha}"] if self.sha else []
        if self.action == "train":
            args = [f"{k}={v}" for k, v in (("nodes", self.nodes), ("gpus", self.gpus)) if v is not None]
            return " ".join([PREFIX, "train", *args, *at])
        return " ".join([PREFIX, self.action, self.env or "", *at])


@dataclass(frozen=True)
class BadCommand:
    """A comment that starts with ``/mlops-ci`` but does not follow the grammar."""

    line: str  # the line as written (untrusted: escape before showing it)
    reason: str  # safe to show: built from the grammar, never from the comment


@dataclass(frozen=True)
class CommentEvent:
    """The facts of an ``issue_comment`` event that decide whether to answer it."""

    event: str
    action: str | None  # created, edited, deleted
    repository: str | None
    pr_number: int | None  # None: the comment is on an issue, not a pull request
    comment_id: int | None
    author: str | None
    author_type: str | None  # "User", "Bot", "Organization"
    body: str


@dataclass(frozen=True)
class Decision:
    """What to answer: the reaction, the reply and the step outputs."""

    accepted: bool
    reaction: str
    reply: str
    command: SlashCommand | None = None
    pull: PullFacts | None = None
    reason: str = ""  # why it was refused
    outputs: dict[str, str] = field(default_factory=dict)


def _lines(body: str) -> list[str]:
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    return [line.strip() for line in text.split("\n") if line.strip()]


def is_command_line(line: str) -> bool:
    """Whether ``line`` is addressed to mlops-ci: its first word is exactly ``/mlops-ci``."""
    return line == PREFIX or line.startswith((PREFIX + " ", PREFIX + "\t"))


def command_line(body: str | None) -> str | None:
    """The comment's first non-empty line if it is a ``/mlops-ci`` command, else None."""
    lines = _lines(body or "")
    return lines[0] if lines and is_command_line(lines[0]) else None


def grammar(environments: Collection[str] | None = None) -> str:
    """The accepted commands, as Markdown."""
    envs = (", ".join(f"`{e}`" for e in sorted(environments)) if environments
            else "a name of lowercase letters, digits and `-` (at most 32 characters)")
    return "\n".join([
        "Accepted commands (one per comment, on its first line):",
        "",
        (f"- `{PREFIX} train [nodes=N] [gpus=G] [@SHA]` (N from {NODES_RANGE[0]} to {NODES_RANGE[1]}, "
         f"G from {GPUS_RANGE[0]} to {GPUS_RANGE[1]}, each at most once; `@SHA` required on a fork's pull request)"),
        f"- `{PREFIX} promote <env> @SHA` (SHA: the head commit you reviewed, 7 to 40 hex digits)",
        f"- `{PREFIX} rollback <env>`",
        "",
        f"where `<env>` is {envs}.",
    ])


def _env(token: str, environments: Collection[str] | None) -> str | None:
    if environments:
        return token if token in environments else None
    return token if ENV_RE.fullmatch(token) else None


def _sha(args: list[str]) -> tuple[list[str], str | None, bool]:
    """``args`` without a trailing ``@SHA``, the SHA, and whether an ``@`` argument was malformed."""
    if args and args[-1].startswith("@"):
        match = _SHA_ARG.fullmatch(args[-1])
        return args[:-1], match.group(1) if match else None, match is None
    return args, None, False


def _train(line: str, args: list[str]) -> SlashCommand | BadCommand:
    values: dict[str, int] = {}
    args, sha, bad = _sha(args)
    if bad:
        return BadCommand(line, "`@SHA` is 7 to 40 lowercase hex digits of the head commit")
    for arg in args:
        match = _TRAIN_ARG.fullmatch(arg)
        if match is None:
            return BadCommand(line, "`train` takes only `nodes=N` and `gpus=G`, with whole numbers")
        key, value = match.group(1), int(match.group(2))
        if key in values:
            return BadCommand(line, f"`{key}` is given more than once")
        low, high = NODES_RANGE if key == "nodes" else GPUS_RANGE
        if not low <= value <= high:
            return BadCommand(line, f"`{key}` must be from {low} to {high}")
        values[key] = value
    return SlashCommand("train", nodes=values.get("nodes"), gpus=values.get("gpus"), sha=sha)


def parse_command(body: str | None,
                  environments: Collection[str] | None = None) -> SlashCommand | BadCommand | None:
    """What the comment ``body`` asks: None when it is not a command at all.

    ``environments``: the names in ``.mlops-ci.yaml`` (None or empty: any name that matches
    :data:`ENV_RE`)."""
    lines = _lines(body or "")
    if not lines or not is_command_line(lines[0]):
        return None
    line = lines[0]
    if len(line) > MAX_LINE:
        return BadCommand(line, f"the command line is longer than {MAX_LINE} characters")
    if _UNPRINTABLE.search(line):
        return BadCommand(line, "the command may hold only plain ASCII letters, digits, `=` and `-`")
    if any(is_command_line(other) for other in lines[1:]):
        return BadCommand(line, "one command per comment")
    words = line.split()[1:]
    if not words:
        return BadCommand(line, "no command after `/mlops-ci`")
    verb, args = words[0], words[1:]
    if verb not in ACTIONS:
        return BadCommand(line, "unknown command (use `train`, `promote` or `rollback`)")
    if verb == "train":
        return _train(line, args)
    args, sha, bad = _sha(args) if verb == "promote" else (args, None, False)
    if bad:
        return BadCommand(line, "`@SHA` is 7 to 40 lowercase hex digits of the head commit")
    if len(args) != 1:
        return BadCommand(line, f"`{verb}` takes exactly one environment" + (" and `@SHA`" if verb == "promote" else ""))
    env = _env(args[0], environments)
    if env is None:
        return BadCommand(line, "unknown environment" if environments else "not a valid environment name")
    return SlashCommand(verb, env=env, sha=sha)  # type: ignore[arg-type]


def triage(event: CommentEvent) -> str | None:
    """Why the event is not ours to answer (nothing is read or posted), or None to answer it."""
    if event.event != "issue_comment":
        return f"the event is {event.event!r}, not issue_comment"
    if event.action != "created":
        return f"the comment was {event.action or 'changed'}, not created: only new comments are commands"
    if event.pr_number is None:
        return "the comment is on an issue, not a pull request"
    author = event.author or ""
    if event.author_type == "Bot" or author.lower().endswith("[bot]"):
        return f"the comment is by a bot ({author})"
    if command_line(event.body) is None:
        return "the comment is not a /mlops-ci command"
    if event.comment_id is None or not author:
        return "the event payload has no comment id or author"
    return None


def quote(line: str) -> str:
    """Untrusted command text for the reply: cut, escaped (no Markdown, HTML or mentions)."""
    cut = line if len(line) <= QUOTE_LIMIT else line[:QUOTE_LIMIT] + "…"
    return esc(cut)


def empty_outputs(pr: int | None = None) -> dict[str, str]:
    return {"accepted": "false", "action": "", "env": "", "nodes": "", "gpus": "", "pr": str(pr or ""),
            "head-sha": "", "head-repository": "", "fork": "false", "version": ""}


def _refuse(event: CommentEvent, reaction: str, reason: str, detail: str,
            command: SlashCommand | None = None) -> Decision:
    marker = REPLY_MARKER.format(id=event.comment_id)
    author = esc(event.author or "someone")
    line = command_line(event.body) or ""
    reply = "\n".join([marker, f"👎 **mlops-ci** did not run the command from {author}: {reason}.", "",
                       f"> {quote(line)}", "", detail])
    return Decision(False, reaction, reply, command=command, reason=reason,
                    outputs=empty_outputs(event.pr_number))


def refuse_permission(event: CommentEvent, permission: str) -> Decision:
    return _refuse(event, REFUSED_REACTION, f"it needs write permission on this repository, and "
                   f"{esc(event.author)} has {esc(permission)}",
                   "Commands are accepted from users with the admin, maintain or write role.")


def refuse_syntax(event: CommentEvent, bad: BadCommand, environments: Collection[str] | None) -> Decision:
    return _refuse(event, SYNTAX_REACTION, bad.reason, grammar(environments))


def accept(event: CommentEvent, command: SlashCommand, pull: PullFacts, candidate: str | None = None,
           version: str | None = None) -> Decision:
    marker = REPLY_MARKER.format(id=event.comment_id)
    fork = esc(pull.head_repository) if pull.head_repository else "a deleted fork"
    where = f" (from {fork})" if pull.fork else ""
    lines = [
        marker,
        f"🚀 **mlops-ci** accepted `{command.text()}` from {esc(event.author)}.",
        "",
        (f"Pinned to head commit {code(pull.head_sha)}{where}: the workflow acts on that commit even if "
         "the pull request moves on. Comment again to act on a newer head."),
    ]
    if candidate:
        lines += ["", f"It promotes {esc(candidate)}."]
    reply = "\n".join(lines)
    outputs = {"accepted": "true", "action": command.action, "env": command.env or "",
               "nodes": str(command.nodes or ""), "gpus": str(command.gpus or ""), "pr": str(pull.number),
               "head-sha": pull.head_sha, "head-repository": pull.head_repository or "",
               "fork": "true" if pull.fork else "false", "version": version or ""}
    return Decision(True, ACCEPTED_REACTION, reply, command=command, pull=pull, outputs=outputs)


def refuse_approver(event: CommentEvent, command: SlashCommand, listed: Collection[str]) -> Decision:
    """A promote or rollback from someone the environment's approvers do not admit, naming who may."""
    author = esc(event.author or "")
    teams = [t for t in listed if team_of(t)]
    detail = (f"`{command.action}` into {code(command.env)} is accepted from its approvers only "
              f"(`policy.approvers` in .mlops-ci.yaml): {describe(listed)}.")
    if teams:
        detail += (f" GitHub says {author} is not an active member of {describe(teams)} ({NOT_SEEN_NOTE}).")
    return _refuse(event, REFUSED_REACTION, f"{author} is not an approver of {code(command.env)}", detail,
                   command=command)


def refuse_head(event: CommentEvent, command: SlashCommand, pull: PullFacts) -> Decision | None:
    """A refusal when the command does not name the head it acts on (promote must, and train on a
    fork's pull request: code from outside runs with the job's credentials), or names
    another commit than the pull request's head now (pushed after the comment was written)."""
    again = SlashCommand(command.action, env=command.env, nodes=command.nodes, gpus=command.gpus,
                         sha=pull.head_sha[:12]).text()
    if command.sha is None and (command.action == "promote" or (command.action == "train" and pull.fork)):
        what = "a promotion" if command.action == "promote" else "training a fork's code"
        return _refuse(event, REFUSED_REACTION, f"{what} must name the head commit you reviewed",
                       f"The head of pull request #{pull.number} is {code(pull.head_sha)}. After reviewing it, "
                       f"comment `{again}`.", command=command)
    if command.sha is not None and not pull.head_sha.startswith(command.sha):
        return _refuse(event, REFUSED_REACTION, f"the head of pull request #{pull.number} is now "
                       f"{code(pull.head_sha[:12])}, not the {code(command.sha)} the command names (it was pushed "
                       "after the comment, or the SHA is wrong)",
                       f"Review {code(pull.head_sha)}, then comment `{again}`.", command=command)
    return None


def decide(event: CommentEvent, parsed: SlashCommand | BadCommand, *, permission: str,
           pull: PullFacts | None, environments: Collection[str] | None = None,
           find_candidate: Callable[[PullFacts], tuple[str, str]] | None = None,
           approvers: Mapping[str, Collection[str]] | None = None,
           member_of: Callable[[str, str], bool] | None = None) -> Decision:
    """Accept or refuse a command. ``permission`` is GitHub's (admin, write, read, none);
    ``pull`` may be None only when the command is refused before it is needed. ``find_candidate``:
    for ``promote``, the version registered for the pinned head and how to name it (it raises
    FatalError, which refuses the command with its reason, when there is none). ``approvers``: per
    environment, the users and teams whose promote and rollback into it are accepted (policy.approvers);
    ``member_of(team, login)``: whether the author is an active member of a listed team, asked only
    when the author is not listed by name (it reads GitHub, as ``find_candidate`` reads the registry)."""
    if permission not in WRITE_PERMISSIONS:
        return refuse_permission(event, permission)
    if isinstance(parsed, BadCommand):
        return refuse_syntax(event, parsed, environments)
    listed = (approvers or {}).get(parsed.env or "") if parsed.action in ("promote", "rollback") else None
    if listed and admitting(listed, event.author or "", member_of) is None:
        return refuse_approver(event, parsed, listed)
    if pull is None:
        raise ValueError("decide() needs the pull request to accept a command")
    if parsed.action == "train" and (pull.state != "open" or pull.merged):
        state = "merged" if pull.merged else "closed"
        return _refuse(event, REFUSED_REACTION, f"pull request #{pull.number} is {state}",
                       "`train` runs only on an open pull request; `promote` and `rollback` work on any.",
                       command=parsed)
    refused = refuse_head(event, parsed, pull)
    if refused is not None:
        return refused
    if parsed.action == "promote" and find_candidate is not None:
        from mlops_ci.errors import FatalError

        try:
            version, named = find_candidate(pull)
        except FatalError as err:
            return _refuse(event, REFUSED_REACTION, esc(err.message), esc(err.hint or ""), command=parsed)
        return accept(event, parsed, pull, candidate=named, version=version)
    return accept(event, parsed, pull)


def reply_for(body: str | None) -> int | None:
    """The comment id a reply of ours answers (from its hidden marker), or None."""
    match = _REPLY_MARKER.search(body or "")
    return int(match.group(1)) if match else None

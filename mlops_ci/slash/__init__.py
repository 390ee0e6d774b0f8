"""Slash commands in pull-request comments: the grammar and the decision (``grammar``), and answering
one on GitHub (``handle``: reads the event, the author's permission and the pull request, reacts and
replies through mlops_ci.backends.github)."""

from mlops_ci.slash.grammar import (
    ACCEPTED_REACTION,
    PREFIX,
    REFUSED_REACTION,
    SYNTAX_REACTION,
    WRITE_PERMISSIONS,
    BadCommand,
    CommentEvent,
    Decision,
    PullFacts,
    SlashCommand,
    command_line,
    decide,
    empty_outputs,
    grammar,
    parse_command,
    reply_for,
    triage,
)

__all__ = ["ACCEPTED_REACTION", "PREFIX", "REFUSED_REACTION", "SYNTAX_REACTION", "WRITE_PERMISSIONS", "BadCommand",
           "CommentEvent", "Decision", "PullFacts", "SlashCommand", "command_line", "decide", "empty_outputs",
           "grammar", "parse_command", "reply_for", "triage"]

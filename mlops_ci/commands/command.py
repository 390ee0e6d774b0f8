"""`mlops-ci command`: act on a `/mlops-ci` command in a pull-request comment.

Run by a workflow on `issue_comment`. Comments that are not commands, edited or deleted
comments, comments on issues and comments by bots are left alone (exit 0, accepted=false).
A command is answered on the pull request with a reaction and a reply, accepted or refused
(exit 0 either way); the step outputs tell the next jobs what to run, at which head SHA.
Exit 5 when GitHub fails. The environments come from `.mlops-ci.yaml` when there is one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_ci.commands import _common


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_config(p)
    p.add_argument("--dry-run", action="store_true",
                   help="read the permission and the pull request, print the reaction, reply and outputs; "
                        "send and write nothing")


def environments(config: Path | None) -> tuple[str, ...] | None:
    """The environments of the config (`--config`, or the nearest one); None when there is none."""
    from mlops_ci.config import find_config, load_config
    from mlops_ci.errors import ConfigError

    if config is None:
        try:
            config = find_config(Path.cwd())
        except ConfigError:
            return None  # any environment name that matches the grammar
    return tuple(load_config(config).config.environments)


def run(args: argparse.Namespace) -> int:
    import sys

    from mlops_ci.backends.publishers.github_slash import handle_comment
    from mlops_ci.console import echo

    outcome = handle_comment(environments=environments(args.config), dry_run=args.dry_run,
                             on_note=lambda line: echo(f"mlops-ci: {line}", stream=sys.stderr))
    if args.dry_run:
        echo(outcome.describe())
    elif outcome.reply_url:
        echo(f"answered: {outcome.reply_url}")
    return 0

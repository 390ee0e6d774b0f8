"""`mlops-ci command`: act on a `/mlops-ci` command in a pull-request comment.

Run by a workflow on `issue_comment`. Comments that are not commands, edited or deleted
comments, comments on issues and comments by bots are left alone (exit 0, accepted=false).
A command is answered on the pull request with a reaction and a reply, accepted or refused
(exit 0 either way); the step outputs tell the next jobs what to run, at which head SHA.
Exit 5 when GitHub fails. The environments come from `.mlops-ci.yaml` when there is one. A
`promote` is accepted only for a version registered for the head it names (read from the
registry this job is given: for a fork, one a trusted job registered), which the reply names.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_config(p)
    p.add_argument("--model", "-m", metavar="NAME",
                   help="the model a `promote` acts on (default: the config's only model)")
    p.add_argument("--dry-run", action="store_true",
                   help="read the permission and the pull request, print the reaction, reply and outputs; "
                        "send and write nothing")


def _config(config: Path | None):
    """The config (`--config`, or the nearest one), loaded once for the command; None when there is none."""
    from mlops_ci.backends import name_problems
    from mlops_ci.config import find_config, load_config
    from mlops_ci.errors import ConfigError

    if config is None:
        try:
            config = find_config(Path.cwd())
        except ConfigError:
            return None  # any environment name that matches the grammar
    return load_config(config, checks=[name_problems])


def environments(loaded) -> tuple[str, ...] | None:
    """The environments of the config; None when there is none."""
    return None if loaded is None else tuple(loaded.config.environments)


def approvers(loaded) -> dict[str, tuple[str, ...]]:
    """Per environment of the config, its policy's approvers (only those that list some)."""
    if loaded is None:
        return {}
    return {env: tuple(ec.policy.approvers) for env, ec in loaded.config.environments.items() if ec.policy.approvers}


def candidate_finder(config: Path | None, model: str | None, loaded=None):
    """For `promote`: the version registered for the pinned head, from the registry this job is
    given (None without a config: nothing to look the model up in). ``loaded``: the config, when the
    caller loaded it already."""
    from mlops_ci.backends import name_problems
    from mlops_ci.config import find_config, load_config
    from mlops_ci.errors import ConfigError, UsageError
    from mlops_ci.workspace import Workspace

    if loaded is None:
        try:
            loaded = load_config(config or find_config(Path.cwd()), checks=[name_problems])
        except ConfigError:
            return None
    models = [model] if model else list(loaded.config.models)
    if len(models) != 1:
        raise UsageError("promote from a comment needs --model NAME (the config has several models)")

    def find(pull) -> tuple[str, str]:
        from mlops_ci.backends.tracking import tracking_for
        from mlops_ci.errors import PromotionError
        from mlops_ci.stages.candidate import pull_request_candidate

        ws = Workspace.from_config(loaded)
        tracking = tracking_for(ws)
        if ws.embedded_tracking:
            raise PromotionError("this job has no access to the model registry, so it cannot name the version "
                                 "to promote", hint="pass the registry secrets to slash-commands.yml")
        ws.model(models[0])  # a name from the command line matched the config before it reaches the registry
        found = pull_request_candidate(tracking, models[0], pr=pull.number, head_sha=pull.head_sha, fork=pull.fork)
        gates = "its gates passed" if found.gates_passed else f"its gates failed: {found.gate_summary}"
        return found.version, f"{models[0]} v{found.version} (run {found.run_id}; {gates})"

    return find


def run(args: argparse.Namespace) -> int:
    import sys

    from mlops_ci.slash.handle import handle_comment
    from mlops_ci.console import echo

    loaded = _config(args.config)
    outcome = handle_comment(environments=environments(loaded), dry_run=args.dry_run,
                             on_note=lambda line: echo(f"mlops-ci: {line}", stream=sys.stderr),
                             find_candidate=candidate_finder(args.config, args.model, loaded),
                             approvers=approvers(loaded))
    if args.dry_run:
        echo(outcome.describe())
    elif outcome.reply_url:
        echo(f"answered: {outcome.reply_url}")
    return ExitCode.OK

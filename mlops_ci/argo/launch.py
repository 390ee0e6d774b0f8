"""Runs in the training pods, once per torchrun worker: ``torchrun ... -m mlops_ci.argo.launch
SCRIPT`` becomes ``python -u SCRIPT <train.args>`` with ``train.env`` in its environment.

A WorkflowTemplate cannot splice a list into a container's argv, and the templates run no
shell, so the arguments and the environment arrive as JSON in two variables (the templates
fill them from the Workflow's ``args`` and ``env`` parameters):

    MLOPS_CI_TRAIN_ARGS   a JSON list of strings, appended to the script's arguments
    MLOPS_CI_TRAIN_ENV    a JSON object of strings, added to the environment

then this process replaces itself (``os.execv``) with the script, keeping its PID, so torchrun
watches and signals the script as it would without the launcher. Only the standard library:
it runs before the script imports anything.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

ARGS_ENV = "MLOPS_CI_TRAIN_ARGS"
ENV_ENV = "MLOPS_CI_TRAIN_ENV"


class LaunchError(Exception):
    pass


def _load(environ: Mapping[str, str], name: str, kind: type, empty: str) -> list[str] | dict[str, str]:
    text = environ.get(name, "").strip() or empty
    try:
        value = json.loads(text)
    except ValueError as err:
        raise LaunchError(f"{name} is not JSON: {err}") from None
    items = value.values() if isinstance(value, dict) else value  # JSON keys are always strings
    if not isinstance(value, kind) or not all(isinstance(i, str) for i in items):
        raise LaunchError(f"{name} must be a JSON {'list' if kind is list else 'object'} of strings")
    return value


def command(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The argv and environment the script runs with (what :func:`main` executes)."""
    environ = os.environ if environ is None else environ
    if not argv or not argv[0] or argv[0].startswith("-"):
        raise LaunchError("usage: python -m mlops_ci.argo.launch SCRIPT [ARG ...]")
    args = _load(environ, ARGS_ENV, list, "[]")
    env = {**environ, **_load(environ, ENV_ENV, dict, "{}")}
    for name in (ARGS_ENV, ENV_ENV):
        env.pop(name, None)
    return [sys.executable, "-u", argv[0], *argv[1:], *args], env


def main(argv: Sequence[str] | None = None) -> NoReturn:
    try:
        exe, env = command(sys.argv[1:] if argv is None else argv)
    except LaunchError as err:
        print(f"mlops-ci launch: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    sys.stdout.flush()
    os.execve(exe[0], exe, env)


if __name__ == "__main__":
    main()

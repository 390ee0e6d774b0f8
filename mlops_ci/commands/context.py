"""`mlops-ci context`: where and why we run, as JSON."""

from __future__ import annotations

import argparse

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_config(p)


def run(args: argparse.Namespace) -> int:
    import json

    from mlops_ci.console import echo

    ws = _common.workspace(args)
    ctx = _common.context(ws)
    echo(json.dumps(ctx.model_dump(mode="json"), indent=2))
    return ExitCode.OK

"""Options and set-up shared by the commands."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, metavar="PATH",
                   help="path to .mlops-ci.yaml (default: the nearest one at or above the current folder)")


def add_model(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    p.add_argument("--model", "-m", required=required, metavar="NAME",
                   help="the model to work on" + ("" if required else " (default: every model in the config)"))


def add_record(p: argparse.ArgumentParser) -> None:
    p.add_argument("--record", type=Path, default=None, metavar="PATH",
                   help="the run record to read and update (default: .mlops-ci/record.json)")


def add_junit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--junit", type=Path, default=None, metavar="PATH",
                   help="also write the checks and gates as JUnit XML to PATH")


def write_junit(record, path: Path | None) -> None:
    if path is None:
        return
    from mlops_ci.records import write_text_atomic
    from mlops_ci.stages.junit import render_junit

    write_text_atomic(path, render_junit(record))


def workspace(args: argparse.Namespace):
    """Load and validate the config, then build the runtime workspace from it."""
    from mlops_ci.config import find_config, load_config
    from mlops_ci.workspace import Workspace

    path = args.config or find_config(Path.cwd())
    return Workspace.from_config(load_config(path))


def context(ws):
    from mlops_ci.context import detect_context

    return detect_context(ws.root, ws.config.default_branch)


def progress():
    from mlops_ci.console import ConsoleProgress

    return ConsoleProgress()

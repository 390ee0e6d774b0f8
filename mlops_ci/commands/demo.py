"""`mlops-ci demo`: the whole loop on a scratch copy of examples/churn."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_ci.errors import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workdir", type=Path, default=Path(".mlops-ci-demo"), metavar="DIR",
                   help="scratch folder, emptied at the start of every run (default: ./.mlops-ci-demo)")


def run(args: argparse.Namespace) -> int:
    from mlops_ci.demo import run_demo

    run_demo(args.workdir)
    return ExitCode.OK

"""`mlops-ci render training`: print what mlops-ci would submit, here the training Workflow."""

from __future__ import annotations

import argparse

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def _count(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    t = sub.add_parser("training", help="the Argo Workflow that trains a model at this commit (YAML)")
    _common.add_config(t)
    _common.add_model(t, required=True)
    t.add_argument("--nodes", type=_count(1, 64), default=None, metavar="N",
                   help="nodes (pods) to train on, 1-64 (default: train.argo.nodes)")
    t.add_argument("--gpus-per-node", type=_count(0, 16), default=None, metavar="G",
                   help="GPUs per node, 0-16 (default: train.argo.gpus_per_node)")
    t.add_argument("--pr", type=_count(1, 10**9), default=None, metavar="N",
                   help="the pull request (default: the GitHub event's, none locally)")
    t.add_argument("--head-sha", default=None, metavar="SHA", help="the commit to train (default: HEAD)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlops_ci.argo.checkout import workflow_for_checkout
    from mlops_ci.backends import name_problems
    from mlops_ci.config import find_config, load_config
    from mlops_ci.console import echo
    from mlops_ci.serving.yamlio import dump

    loaded = load_config(args.config or find_config(Path.cwd()), checks=[name_problems])
    workflow = workflow_for_checkout(loaded, args.model, nodes=args.nodes, gpus_per_node=args.gpus_per_node,
                                     pr=args.pr, head_sha=args.head_sha)
    echo(dump(workflow).decode("utf-8").rstrip("\n"))
    return ExitCode.OK

"""`mlops-ci config validate | schema`."""

from __future__ import annotations

import argparse

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = sub.add_parser("validate", help="validate .mlops-ci.yaml and that the training scripts and data it "
                       "names exist (in the work tree or tracked by DVC); errors name file:line:column "
                       "and the fix")
    _common.add_config(v)
    sub.add_parser("schema", help="print the JSON Schema of .mlops-ci.yaml (for editors)")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from mlops_ci.config import find_config, json_schema, load_config
    from mlops_ci.console import echo

    if args.action == "schema":
        echo(json.dumps(json_schema(), indent=2))
        return ExitCode.OK
    loaded = load_config(args.config or find_config(Path.cwd()), check_paths=True)
    cfg = loaded.config
    echo(f"{loaded.path}: valid ({len(cfg.models)} model(s): {', '.join(cfg.models)}; "
         f"{len(cfg.environments)} environment(s): {', '.join(cfg.environments)})")
    return ExitCode.OK

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

    from mlops_ci.backends import name_problems
    from mlops_ci.config import find_config, json_schema, load_config
    from mlops_ci.console import echo

    if args.action == "schema":
        echo(json.dumps(_with_backend_names(json_schema()), indent=2))
        return ExitCode.OK
    loaded = load_config(args.config or find_config(Path.cwd()), check_paths=True, checks=[name_problems])
    cfg = loaded.config
    echo(f"{loaded.path}: valid ({len(cfg.models)} model(s): {', '.join(cfg.models)}; "
         f"{len(cfg.environments)} environment(s): {', '.join(cfg.environments)})")
    return ExitCode.OK


def _with_backend_names(schema: dict) -> dict:
    """The schema with each backend setting's allowed names, as their registries hold them (the
    config itself only knows they are names)."""
    from mlops_ci.backends import registries

    defs = schema.get("$defs", {})
    where = {"tracking.backend": ("TrackingConfig", "backend"), "gitops.backend": ("GitOpsConfig", "backend"),
             "models.*.train.backend": ("TrainConfig", "backend")}
    for setting, (role, registry) in registries().items():
        model, field = where[setting]
        prop = defs.get(model, {}).get("properties", {}).get(field)
        if prop is not None:
            for option in prop.get("anyOf", [prop]):
                if option.get("type") == "string":
                    option["enum"] = list(registry)
    return schema

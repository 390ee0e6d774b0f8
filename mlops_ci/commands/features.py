"""`mlops-ci features plan|apply|skew`: the feature repository, as code.

``plan``: what the change since the base does to the feature repository (the views it changes,
the models that read them, breaking changes) and `feast plan` against each environment's registry.
``apply --env``: `feast apply` to the environment's registry (and materialize-incremental when the
config says so); a promotion of a model that reads features does this itself first. ``skew --env``:
the online store's values against the offline store's, for a sample of entities. Exit codes: 1
when the plan fails a check or skew is found, 5 when Feast fails.
"""

from __future__ import annotations

import argparse

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode

ACTIONS = ("plan", "apply", "skew")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=ACTIONS, help="plan: the change's plan per environment; apply: apply to an "
                   "environment's registry; skew: online against offline in an environment")
    _common.add_config(p)
    _common.add_model(p)
    p.add_argument("--env", "-e", metavar="ENV", help="the environment (apply and skew: required)")
    p.add_argument("--dry-run", action="store_true", help="apply: print `feast plan` against the environment's "
                   "registry; apply and materialise nothing")


def _plan(ws, args) -> int:
    from mlops_ci.console import echo
    from mlops_ci.pipeline import default_backends
    from mlops_ci.stages.features import run_features

    record = run_features(ws, _common.context(ws), tracking=default_backends(ws).tracking,
                          progress=_common.progress())
    if record.base is None:
        echo(f"{record.repo}: no base revision to compare with (read at the head only)")
    elif not record.changed:
        echo(f"{record.repo}: no change since the base {record.base[:12]}")
    for c in record.changes:
        echo(f"{c.kind} {c.name} {c.change}: " + "; ".join(c.details))
    for a in record.affected:
        echo(f"affected: {a.model} ({a.service}): " + "; ".join(a.reasons))
    for p in record.plans:
        if args.env and p.env != args.env:
            continue
        echo(f"--- feast plan against {p.env} ({p.registry})")
        echo(p.error or (p.registry_diff.rstrip() or "(no registry changes)"))
        if p.infra_diff.strip():
            echo(p.infra_diff.rstrip())
    for d in record.data:
        echo(f"{d.model} {d.role}: {d.head_rows} rows from {d.service} -> {d.path}")
    for s in record.skew:
        echo(f"skew ({s.where}): {s.mismatch_count} mismatch(es) in {s.checked} entities")
    for f in record.findings:
        echo(f"{f.status}: {f.message}")
    return ExitCode.GATE_FAILED if record.status == "fail" else ExitCode.OK


def run(args: argparse.Namespace) -> int:
    from mlops_ci.console import echo
    from mlops_ci.errors import UsageError
    from mlops_ci.stages.features_apply import apply_to, skew_in

    ws = _common.workspace(args)
    if ws.config.features is None:
        raise UsageError("the config has no `features` section", hint="add features: {repo: <feature repository>}")
    if args.action == "plan":
        return _plan(ws, args)
    if not args.env:
        raise UsageError(f"features {args.action} needs --env ENV")
    env = ws.environment(args.env)
    progress = _common.progress()
    if args.action == "apply":
        if args.dry_run:
            from mlops_ci.stages.features_apply import plan_for

            echo(plan_for(ws, env, progress=progress))
            return ExitCode.OK
        echo(apply_to(ws, env, progress=progress).describe())
        return ExitCode.OK
    models = [args.model] if args.model else None
    found = skew_in(ws, env, models=models, progress=progress)
    for s in found:
        echo(f"{s.service} in {env}: {s.checked} entities, {s.features} features, {s.mismatch_count} mismatch(es)")
        for m in s.mismatches[:20]:
            echo(f"  {m.feature} for {m.entity}: online {m.online}, offline {m.offline}")
        if s.mismatch_count > 20:
            echo(f"  ... and {s.mismatch_count - 20} more (the first 20 shown)")
    if not found:
        echo(f"no model reading features in {env} has an entity table to sample: nothing checked")
    return ExitCode.GATE_FAILED if any(s.mismatch_count for s in found) else ExitCode.OK

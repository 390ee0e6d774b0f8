"""`mlops-ci promote`: commit the serving manifests for a model version, then move its alias."""

from __future__ import annotations

import argparse

from pathlib import Path

from mlops_ci.commands import _common


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_config(p)
    _common.add_model(p, required=True)
    p.add_argument("--env", "-e", required=True, metavar="ENV", help="the environment to promote to")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--record", type=Path, default=None, metavar="PATH",
                        help="promote the version registered in this run record (default: .mlops-ci/record.json)")
    source.add_argument("--version", metavar="N", help="promote this MLflow model version instead")
    p.add_argument("--dry-run", action="store_true", help="print the manifest diff; commit and move nothing")
    p.add_argument("--force", action="store_true",
                   help="promote even though the gates failed or the recorded commit is not merged (needs --reason)")
    p.add_argument("--reason", metavar="TEXT", help="why --force is needed (kept in the manifest and the record)")
    p.add_argument("--allow-unmerged", action="store_true",
                   help="promote a record whose commit is not merged yet (a /mlops-ci promote on a pull request); "
                        "its gates must still pass")


def run(args: argparse.Namespace) -> int:
    from mlops_ci.console import echo
    from mlops_ci.errors import UsageError
    from mlops_ci.pipeline import default_backends
    from mlops_ci.records import load_record, save_record
    from mlops_ci.stages.promote import candidate_from_record, candidate_from_registry, check_with_registry, promote

    if args.force and not args.reason:
        raise UsageError("--force needs --reason TEXT (it is recorded with the promotion)")
    ws = _common.workspace(args)
    ws.model(args.model)
    ws.environment(args.env)
    backends = default_backends(ws)
    record = None
    if args.version:
        candidate = candidate_from_registry(backends.tracking, args.model, args.version)
    else:
        record_path = args.record or ws.record_path
        record = load_record(record_path)
        candidate = candidate_from_record(ws, record, args.model,
                                          check_merged=not (args.force or args.allow_unmerged))
        candidate = check_with_registry(backends.tracking, candidate)  # the file may have been altered
    result = promote(ws, candidate, args.env, tracking=backends.tracking, gitops=backends.gitops,
                     dry_run=args.dry_run, force_reason=args.reason if args.force else None)
    changed = [c for c in result.changes if c.action != "unchanged"]
    if args.dry_run:
        echo(f"dry run: promoting {args.model} v{result.version} to {args.env} would "
             + ("change nothing" if result.noop else f"change {len(changed)} file(s) and move alias {result.alias!r}"))
        for c in changed:
            echo(c.diff)
        if result.on_hold and not args.force:
            echo(f"note: {result.on_hold} holds this model in {args.env}: a real promote is refused "
                 "without --force --reason (or `mlops-ci rollback --clear-hold`)")
        return 0
    if result.noop:
        echo(f"{args.model} v{result.version} is already what {args.env} serves (no commit); "
             f"alias {result.alias!r} -> v{result.version}")
    else:
        echo(f"promoted {args.model} v{result.version} to {args.env}: commit {result.commit_sha} on "
             f"{result.remote} ({result.branch}); alias {result.alias!r} -> v{result.version}")
    if record is not None:
        record.model(args.model).promotions.append(result)
        save_record(record, args.record or ws.record_path)
    return 0

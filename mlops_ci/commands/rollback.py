"""`mlops-ci rollback`: restore the previous model version in an environment (revert commit, alias, hold)."""

from __future__ import annotations

import argparse

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_config(p)
    _common.add_model(p, required=True)
    p.add_argument("--env", "-e", required=True, metavar="ENV", help="the environment to roll back")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--to", metavar="VERSION",
                        help="pin this MLflow model version (default: revert to the version served before)")
    action.add_argument("--clear-hold", action="store_true",
                        help="remove the hold a rollback left, so automatic promotion resumes")
    p.add_argument("--reason", metavar="TEXT",
                   help="why (required; kept in the commit, the hold marker and the record; default: "
                        "$MLOPS_CI_REASON, which workflows use because free text does not survive word splitting)")
    p.add_argument("--dry-run", action="store_true", help="print the manifest diff; commit and move nothing")


def run(args: argparse.Namespace) -> int:
    from mlops_ci.console import echo
    from mlops_ci.errors import UsageError
    from mlops_ci.pipeline import default_backends
    from mlops_ci.stages.rollback import clear_hold, rollback

    ws = _common.workspace(args)
    ws.model(args.model)
    ws.environment(args.env)
    reason = " ".join((args.reason or ws.env.get("MLOPS_CI_REASON") or "").split()) or None
    if reason is None:  # the dry run shows the hold it would write: with its reason too
        raise UsageError("a rollback (and releasing a hold) needs a reason: --reason TEXT (or $MLOPS_CI_REASON)",
                         hint="it is kept in the commit, the hold marker and the record, as the rollback workflow does")
    backends = default_backends(ws)
    actor = ws.actor()
    if args.clear_hold:
        result = clear_hold(ws, args.model, args.env, gitops=backends.gitops, reason=reason, actor=actor,
                            dry_run=args.dry_run)
        if args.dry_run:
            echo(f"dry run: releasing the hold on {args.model} in {args.env} would delete {result.hold_path}")
            echo(result.changes[0].diff)
        else:
            echo(f"released the hold on {args.model} in {args.env}: commit {result.commit_sha} on "
                 f"{result.remote} ({result.branch}); automatic promotion resumes")
        return ExitCode.OK
    result = rollback(ws, args.model, args.env, tracking=backends.tracking, gitops=backends.gitops, to=args.to,
                      reason=reason, actor=actor, dry_run=args.dry_run)
    changed = [c for c in result.changes if c.action != "unchanged"]
    how = ("reverting " + ", ".join(sha[:12] for sha in result.reverted_commits) if result.action == "revert"
           else f"re-pinning v{result.version}")
    if result.features_commit or result.feature_service:
        echo(f"note: {args.model} v{result.version} was trained with the feature repository at "
             f"{result.features_commit or 'an unrecorded commit'} ({result.feature_service or 'service unrecorded'}); "
             "if a later feature change broke what it reads, check out that commit's feature repository and run "
             f"`mlops-ci features apply --env {args.env}`")
    if not result.gates_passed:
        echo(f"note: {args.model} v{result.version} carries no passing mlops-ci evaluation (recorded)")
    for why in result.not_validated:
        echo(f"note: not checked: {why}")
    if args.dry_run:
        echo(f"dry run: rolling back {args.model} in {args.env} from v{result.rollback_of} to v{result.version} "
             f"({how}) would " + ("change nothing" if result.noop else
                                  f"change {len(changed)} file(s), hold {result.hold_path} and move alias "
                                  f"{result.alias!r}"))
        for c in changed:
            echo(c.diff)
        return ExitCode.OK
    if result.noop:
        echo(f"{args.env} already serves {args.model} v{result.version} on hold (no commit); "
             f"alias {result.alias!r} -> v{result.version}")
    else:
        echo(f"rolled back {args.model} in {args.env} from v{result.rollback_of} to v{result.version} ({how}): "
             f"commit {result.commit_sha} on {result.remote} ({result.branch}); alias {result.alias!r} -> "
             f"v{result.version}; automatic promotion is on hold until `mlops-ci rollback --clear-hold "
             f"--model {args.model} --env {args.env}`")
    return ExitCode.OK

"""`mlops-ci promote`: commit the serving manifests for a model version, then move its alias.

`--via-pr` proposes the commit as a pull request in the GitOps repository instead (the default
for an environment named prod or production, see `promote_via` in `.mlops-ci.yaml`);
`--declared` applies `.mlops-ci.promotions.yaml` (promotion as code, on merge). In a GitHub job
with a token, each promotion that changed something is recorded as a GitHub Deployment.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_config(p)
    p.add_argument("--model", "-m", metavar="NAME", help="the model to promote (with --declared: only this model)")
    p.add_argument("--env", "-e", metavar="ENV",
                   help="the environment to promote to (with --declared: only this environment)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--record", type=Path, default=None, metavar="PATH",
                        help="promote the version registered in this run record (default: .mlops-ci/record.json)")
    source.add_argument("--version", metavar="N", help="promote this MLflow model version instead")
    source.add_argument("--declared", action="store_true",
                        help="promote what .mlops-ci.promotions.yaml at HEAD declares, where it is not in place "
                             "yet (a no-op otherwise)")
    via = p.add_mutually_exclusive_group()
    via.add_argument("--via-pr", action="store_true",
                     help="commit to a new branch of the GitOps repository and open a pull request there "
                          "(the default as the environment's promote_via says; unset: for prod/production "
                          "when the GitOps repository is on GitHub)")
    via.add_argument("--push", action="store_true", help="push to the GitOps branch even where promote_via "
                                                         "says pull_request")
    p.add_argument("--dry-run", action="store_true", help="print the manifest diff; commit and move nothing")
    p.add_argument("--force", action="store_true",
                   help="promote even though the gates failed or a hold is in place (needs --reason); it never "
                        "lifts the merge rule (that is --allow-unmerged)")
    p.add_argument("--reason", metavar="TEXT", help="why --force is needed (kept in the manifest and the record)")
    p.add_argument("--allow-unmerged", action="store_true",
                   help="promote a record whose commit is not merged yet (a /mlops-ci promote on a pull request); "
                        "its gates must still pass")
    p.add_argument("--pull-request", type=int, default=None, metavar="N",
                   help="a writer's /mlops-ci promote: promote the version registered for pull request N at "
                        "--head-sha (the head the command pinned), not a record")
    p.add_argument("--head-sha", default=None, metavar="SHA", help="with --pull-request: the pinned head commit")
    p.add_argument("--fork", action="store_true",
                   help="with --pull-request: it comes from a fork (only a version a trusted job registered)")


def _proposals(ws, backends):
    """Where a promotion the policy routes to a pull request is proposed (the GitOps repository on GitHub)."""
    from mlops_ci.backends.gitops import proposal_for

    return lambda env, model, version: proposal_for(ws, backends.gitops, env, model, version)


def _route(args: argparse.Namespace) -> str | None:
    return "pull_request" if args.via_pr else "push" if args.push else None


def _deployment(ws, result, source_commit: str | None) -> None:
    """Record a GitHub Deployment for a promotion that changed something (GitHub jobs with a token)."""
    import sys

    from mlops_ci.backends.github.deployments import record_from_env
    from mlops_ci.console import echo
    from mlops_ci.errors import BackendError

    try:
        result.deployment = record_from_env(ws.env, result, source_commit)
    except BackendError as err:  # the promotion itself landed: say so, do not fail it
        hint = "give the job `permissions: deployments: write`" if " 403 " in err.message else err.hint
        echo(f"warning: {result.model} v{result.version} was promoted, but its GitHub Deployment was not "
             f"recorded: {err.message}" + (f" ({hint})" if hint else ""), stream=sys.stderr)
    if result.deployment:
        echo(f"recorded GitHub Deployment {result.deployment}")


def _declared(args: argparse.Namespace, ws, backends) -> int:
    import sys

    from mlops_ci.console import echo
    from mlops_ci.errors import UsageError
    from mlops_ci.promotions import repo_path
    from mlops_ci.stages.declared import apply_declared

    if args.force or args.reason or args.allow_unmerged:
        raise UsageError("--declared takes no --force/--reason/--allow-unmerged: write `reason:` on the entry "
                         "in .mlops-ci.promotions.yaml instead (reviewed with it)")
    outcomes = apply_declared(ws, tracking=backends.tracking, gitops=backends.gitops,
                              proposals=_proposals(ws, backends), via=_route(args), env=args.env, model=args.model,
                              dry_run=args.dry_run)
    if not outcomes:
        echo(f"{repo_path(ws)} at HEAD declares nothing" + (f" for {args.model}" if args.model else "")
             + (f" in {args.env}" if args.env else ""))
    for o in outcomes:
        echo(f"{o.action}: {o.message}", stream=sys.stderr if o.failed else sys.stdout)
        record = o.record
        if record is None:
            continue
        if args.dry_run:
            for c in record.changes:
                if c.action != "unchanged":
                    echo(c.diff)
        else:
            _deployment(ws, record, o.source_commit)
    return ExitCode.GATE_FAILED if any(o.failed for o in outcomes) else ExitCode.OK


def _not_validated(result) -> None:
    from mlops_ci.console import echo

    for why in result.not_validated:
        echo(f"note: not checked: {why}")


def _dirty_config(ws) -> None:
    """The manifests follow the work tree's config, their lineage names HEAD: say when they differ."""
    import sys

    from mlops_ci import gitutil
    from mlops_ci.console import echo

    proc = gitutil.git(["status", "--porcelain", "--", str(ws.loaded.path)], ws.top, check=False)
    if proc.returncode == 0 and proc.stdout.strip():
        echo(f"warning: {ws.loaded.path.name} has uncommitted changes: the manifests follow them, but their "
             "lineage names the last commit; commit them first so that what ships is what a commit shows",
             stream=sys.stderr)


def _alias_effect(backends, model: str, alias: str, version: str) -> str:
    """What the dry run says of the alias: it moves, or it already names the version."""
    current = backends.tracking.version_by_alias(model, alias)
    if current is not None and current.version == version:
        return f"(alias {alias!r} already names v{version})"
    return f"and move alias {alias!r}"


def run(args: argparse.Namespace) -> int:
    from mlops_ci import policy
    from mlops_ci.console import echo
    from mlops_ci.errors import UsageError
    from mlops_ci.lineage import Source
    from mlops_ci.pipeline import default_backends
    from mlops_ci.records import load_record, save_record
    from mlops_ci.stages.candidate import choose
    from mlops_ci.stages.promote import promote_candidate

    if args.force and not args.reason:
        raise UsageError("--force needs --reason TEXT (it is recorded with the promotion)")
    ws = _common.workspace(args)
    if args.model:
        ws.model(args.model)
    if args.env:
        ws.environment(args.env)
    backends = default_backends(ws)
    if args.declared:
        return _declared(args, ws, backends)
    if not args.model or not args.env:
        raise UsageError("promote needs --model NAME and --env ENV (or --declared)")
    if (args.pull_request is None) != (args.head_sha is None) or (args.fork and args.pull_request is None):
        raise UsageError("--pull-request and --head-sha go together (--fork with them)")
    # the lineage that travels with the version: this job's own context (or the head a writer's
    # command pinned), never a record's
    source = (Source(commit=args.head_sha.lower(), pr=args.pull_request) if args.head_sha
              else Source.of(_common.context(ws)))
    record = None
    if args.pull_request is None and not args.version:
        record = load_record(args.record or ws.record_path)
    candidate = choose(ws, backends.tracking, args.model, source=source, version=args.version, record=record,
                       pull_request=args.pull_request, fork=args.fork)
    intent = policy.Intent("promote", args.model, args.env, version=candidate.version or None,
                           force_reason=args.reason if args.force else None, allow_unmerged=args.allow_unmerged,
                           via=_route(args), dry_run=args.dry_run)
    _dirty_config(ws)
    applied, planner = promote_candidate(ws, candidate, intent, tracking=backends.tracking, gitops=backends.gitops,
                                         proposals=_proposals(ws, backends))
    for note in planner.notes:
        echo(note)
    for reason in applied.decision.overridden:  # what --force --reason went past (also in the commit)
        echo(f"forced: {reason.message}")
    if applied.note:  # a dry run that stopped before rendering (a forced candidate is not registered yet)
        echo(f"dry run: {applied.note}")
        return ExitCode.OK
    result = applied.record
    changed = [c for c in result.changes if c.action != "unchanged"]
    if args.dry_run:
        for reason in applied.decision.blocking:  # first: the diff below is what it would be, but a real promote stops
            echo(f"refused: {reason.refusal}")
        if applied.decision.via == "pull_request":
            proposal = _proposals(ws, backends)(args.env, args.model, result.version)
            effect = (f"open a pull request from {proposal.head_branch} in {proposal.repository} changing "
                      f"{len(changed)} file(s)")
        elif result.rollout:
            effect = (f"start the rollout ({result.rollout}), changing {len(changed)} file(s); alias "
                      f"{result.alias!r} moves when it completes")
        else:
            effect = (f"change {len(changed)} file(s) "
                      + _alias_effect(backends, args.model, result.alias, result.version))
        echo(f"dry run: promoting {args.model} v{result.version} to {args.env} would "
             + ("change nothing" if result.noop else effect))
        approvers = ws.config.environments[args.env].policy.approvers
        if applied.decision.via == "pull_request" and approvers:
            from mlops_ci.backends.github.approvals import describe

            echo(f"note: the pull request needs an approving review from one of {describe(approvers)} "
                 f"(policy.approvers of {args.env}): alias {result.alias!r} moves only then")
        _not_validated(result)
        for c in changed:
            echo(c.diff)
        return applied.decision.error().exit_code if applied.decision.blocking else ExitCode.OK
    rollout = f"`mlops-ci rollout advance --model {args.model} --env {args.env}` takes the next steps"
    if result.rollout and result.noop:
        echo(f"{args.model} v{result.version} is rolling out in {args.env} ({result.rollout}): no commit; {rollout}")
    elif result.rollout and result.pull_request:
        echo(f"proposed the rollout of {args.model} v{result.version} in {args.env} ({result.rollout}): pull request "
             f"{result.pull_request} (branch {result.branch}, commit {result.commit_sha}); once it is merged, {rollout}")
    elif result.rollout:
        echo(f"started the rollout of {args.model} v{result.version} in {args.env}: {result.rollout}; commit "
             f"{result.commit_sha} on {result.remote} ({result.branch}); alias {result.alias!r} moves when it "
             f"completes; {rollout}")
    elif result.noop:
        echo(f"{args.model} v{result.version} is already what {args.env} serves (no commit); "
             f"alias {result.alias!r} -> v{result.version}")
    elif result.pull_request:
        echo(f"proposed {args.model} v{result.version} for {args.env}: pull request {result.pull_request} "
             f"(branch {result.branch}, commit {result.commit_sha}); alias {result.alias!r} moves once it is "
             "merged and the promote runs again")
    else:
        echo(f"promoted {args.model} v{result.version} to {args.env}: commit {result.commit_sha} on "
             f"{result.remote} ({result.branch}); alias {result.alias!r} -> v{result.version}")
    _not_validated(result)
    _deployment(ws, result, planner.candidate.lineage.get("source-commit"))
    if record is not None:
        record.model(args.model).promotions.append(result)
        save_record(record, args.record or ws.record_path)
    return ExitCode.OK

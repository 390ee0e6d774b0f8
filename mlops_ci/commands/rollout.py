"""`mlops-ci rollout status|advance|abort`: a rollout's state, its next step, or stopping it.

Stateless: each run reads the GitOps repository, Argo CD and the analysis sources again, so a
schedule (workflows/rollout.yml) or an Argo Workflow (argo/rollout-advance.yaml) may call
``advance`` as often as it likes. Exit codes: 0 for every outcome a schedule should take in its
stride (waiting, advanced, completed, held, nothing to do); 1 when the rollout was aborted (a failed
analysis is a failed check); 5 when a source failed (Argo CD, git).
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode

ACTIONS = ("status", "advance", "abort")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=ACTIONS, help="status: where the rollout stands and what advance would do; "
                   "advance: wait, commit the next step, complete or abort, as the analysis says; abort: roll back now")
    _common.add_config(p)
    _common.add_model(p)
    p.add_argument("--env", "-e", required=True, metavar="ENV", help="the environment the rollout is in")
    p.add_argument("--force", action="store_true", help="advance: take the next step without waiting for the soak "
                   "or a conclusive analysis (never before Argo CD reports the step live); needs --reason")
    p.add_argument("--reason", metavar="TEXT", help="why (--force, abort; default: $MLOPS_CI_REASON): kept in the "
                   "commit and the hold marker")
    p.add_argument("--dry-run", action="store_true", help="say what would be committed; commit and move nothing")
    p.add_argument("--json", action="store_true", help="print the rollout record as JSON")


def run(args: argparse.Namespace) -> int:
    from mlops_ci.console import echo
    from mlops_ci.errors import UsageError
    from mlops_ci.pipeline import default_backends

    ws = _common.workspace(args)
    reason = " ".join((args.reason or ws.env.get("MLOPS_CI_REASON") or "").split()) or None
    if args.force and args.action != "advance":
        raise UsageError("--force goes with advance only")
    if args.action == "abort" and not args.model:
        raise UsageError("abort needs --model: it stops one model's rollout",
                         hint="`mlops-ci rollout status --env ENV` lists the rollouts in progress")
    if (args.force or args.action == "abort") and reason is None:
        raise UsageError(f"{'--force' if args.force else 'abort'} needs a reason: --reason TEXT (or $MLOPS_CI_REASON)",
                         hint="it is kept in the commit" + (" and the hold marker" if args.action == "abort" else ""))
    backends = default_backends(ws)
    env = ws.environment(args.env)
    models = [args.model] if args.model else list(ws.config.models)  # status|advance: every model, in turn
    from mlops_ci.backends.gitops import proposal_for

    def proposals(env_: str, model: str, version: str):  # the pull requests an environment's promotions open
        return proposal_for(ws, backends.gitops, env_, model, version)

    records = []
    # one checkout for every model's look (a step is still planned and pushed on a fresh one)
    with (backends.gitops.checkout() if len(models) > 1 and args.action != "abort" else nullcontext()) as shared:
        for model in models:
            records.append(_one(args, ws, backends, model, env, reason, proposals, shared))
    if args.json:
        echo(json.dumps([r.model_dump(mode="json") for r in records], indent=2) if len(records) > 1
             else records[0].model_dump_json(indent=2))
    failed = any(r.action == "aborted" and not r.dry_run for r in records) and args.action == "advance"
    return ExitCode.GATE_FAILED if failed else ExitCode.OK


def _one(args: argparse.Namespace, ws, backends, model: str, env: str, reason: str | None, proposals, shared):
    """One model's status, advance or abort; its GitHub Deployment's end; said unless --json."""
    from mlops_ci.stages import rollout

    if args.action == "abort":
        record = rollout.abort(ws, model, env, tracking=backends.tracking, gitops=backends.gitops,
                               reason=reason or "", actor=ws.actor(), dry_run=args.dry_run)
    else:
        record = rollout.advance(ws, model, env, tracking=backends.tracking, gitops=backends.gitops,
                                 force_reason=reason if args.force else None, act=args.action == "advance",
                                 dry_run=args.dry_run, proposals=proposals, shared=shared)
    if record.action in ("completed", "aborted") and not record.dry_run:
        _deployment_status(ws, backends, record)
    if not args.json:
        _say(record)
    return record


def _say(record) -> None:
    from mlops_ci.console import echo

    if record.action in ("wait", "held", "none"):
        where = f" ({record.step})" if record.step and record.action != "none" else ""
        echo(f"{record.model} in {record.env}: {record.action}{where}: {record.reason}")
    else:  # the reason says what was done: "advanced to ...", "completed: ...", "aborted: ..."
        echo(f"{record.model} in {record.env}: {record.reason}")
    for f in record.findings:
        echo(f"  {f.status:<12} {f.source}/{f.name}: {f.message}")
    if record.commit_sha:
        echo(f"commit {record.commit_sha} on {record.remote} ({record.branch})")
    if record.deployment:
        echo(f"GitHub Deployment {record.deployment}: {'success' if record.action == 'completed' else 'failure'}")
    if record.note:
        echo(f"noted on {record.note}")


def _deployment_status(ws, backends, record) -> None:
    """The GitHub Deployment the rollout's start recorded gets its end: success or failure (GitHub jobs
    with a token; a failure to record it is a warning, the rollout's commit has landed)."""
    import sys

    from mlops_ci.backends.github.client import make_client
    from mlops_ci.backends.github.deployments import mark_rollout, target_from_env
    from mlops_ci.console import echo
    from mlops_ci.errors import BackendError

    try:
        from mlops_ci.stages.candidate import candidate_from_registry

        lineage = candidate_from_registry(backends.tracking, record.model, record.version).lineage
        # the Deployment the promotion that started it recorded: of the commit its first step shipped
        target = target_from_env(ws.env, record.source_commit or lineage.get("source-commit"))
        if target is None:
            return
        client = make_client(ws.env)
        state = "success" if record.action == "completed" else "failure"
        record.deployment = mark_rollout(client, target, record.env, record.version or "", state,
                                         f"rollout {record.reason}")
        pr = lineage.get("source-pr", "")
        if record.action == "aborted" and pr.isdigit():  # the pull request that shipped it hears why
            from mlops_ci.backends.github.notes import note_on_pull_request
            from mlops_ci.render.rollout import abort_note

            record.note = note_on_pull_request(client, target.repository, int(pr), abort_note(record))
    except BackendError as err:
        echo(f"warning: the GitHub Deployment of {record.model} v{record.version} was not marked, or its pull "
             f"request not told: {err.message}", stream=sys.stderr)

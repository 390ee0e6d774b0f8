"""`mlops-ci train`: train the candidate (torchrun on this machine by default); `--stop` stops
the training Workflows of a closed pull request on Argo instead."""

from __future__ import annotations

import argparse

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_config(p)
    _common.add_model(p)
    _common.add_record(p)
    p.add_argument("--force", action="store_true", help="train even if nothing that affects the model changed")
    p.add_argument("--backend", default=None, metavar="TRAINER",
                   help="where to train, by the trainer's name: torchrun or argo (default: train.backend of the "
                        "config); argo needs train.argo")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would run: the torchrun command, or the Workflow as `argo submit`; "
                   "with --stop, the Workflows it would stop")
    p.add_argument("--stop", action="store_true",
                   help="train nothing: stop the pull request's training Workflows still running on Argo "
                   "(for a closed pull request: the event's, or --pr)")
    p.add_argument("--pr", type=int, default=None, metavar="N",
                   help="with --stop: the pull request (default: the one a pull_request 'closed' event names)")


def _check_backend(name: str | None) -> None:
    from mlops_ci.backends.trainers import TRAINERS
    from mlops_ci.errors import UsageError

    if name is not None and name not in TRAINERS:
        raise UsageError(f"--backend {name!r} is not a trainer: use one of {', '.join(TRAINERS)}")


def run(args: argparse.Namespace) -> int:
    _check_backend(args.backend)
    if args.stop:
        return stop(args)
    if args.pr is not None:
        from mlops_ci.errors import UsageError

        raise UsageError("--pr goes with --stop", hint="mlops-ci train --stop --pr N")
    import shlex
    from contextlib import nullcontext

    from mlops_ci.console import echo
    from mlops_ci.errors import TrainingError
    from mlops_ci.pipeline import default_backends, open_record, recording, step_train

    ws = _common.workspace(args, check_paths=True)
    record = open_record(ws, _common.context(ws), args.record)
    backends = default_backends(ws)
    progress = _common.progress()
    failed = []
    with nullcontext() if args.dry_run else recording(record, args.record or ws.record_path):
        for model in ws.models(args.model):
            entry = step_train(ws, record, model, backends=backends, progress=progress, force=args.force,
                               dry_run=args.dry_run, backend=args.backend)
            t = entry.training
            if args.dry_run:
                echo(f"{model}: would run in {ws.root}:\n  {shlex.join(t.command)}" if t.command
                     else f"{model}: would not train ({t.skip_reason})")
                continue
            if t.status == "succeeded":
                echo(f"{model}: trained in {t.duration_s:.0f}s, MLflow run {t.run_id}, model {t.model_uri}")
            elif t.status == "skipped":
                echo(f"{model}: training skipped ({t.skip_reason})")
            else:
                failed.append(f"{model}: {t.error}")
    if failed:
        raise TrainingError("training failed: " + "; ".join(failed))
    return ExitCode.OK


def stop(args: argparse.Namespace) -> int:
    from mlops_ci.argo.checkout import repository_label
    from mlops_ci.backends.trainers import TRAINERS, trainer_for
    from mlops_ci.console import echo
    from mlops_ci.errors import UsageError

    if args.force or args.record or (args.backend and not trainer_for(args.backend).stops_pull_requests):
        raise UsageError("--stop takes none of --force, --record, --backend of a trainer whose runs end with the job",
                         hint="mlops-ci train --stop [--pr N] [--model M] [--dry-run]")
    ws = _common.workspace(args)
    ctx = _common.context(ws)
    pr = args.pr if args.pr is not None else closed_pull_request(ctx)
    if pr < 1:
        raise UsageError(f"--pr {pr}: a pull request number is 1 or more")
    repository = repository_label(ctx, ws.top)  # as the Workflows were labelled
    stopper = trainer_for(args.backend) if args.backend else next(
        cls() for cls in TRAINERS.values() if cls.stops_pull_requests)
    runs = stopper.stop_pull_request(ws.config, ws.models(args.model), repository=repository, pr=pr,
                                           reason=f"mlops-ci: pull request #{pr} was closed", dry_run=args.dry_run)
    for r in runs:
        what = "would stop" if args.dry_run else "stopped" if r.stopped else "already finished:"
        echo(f"{what} {r.namespace}/{r.name} ({r.model} at {r.head_sha[:12]}, {r.phase})")
    if not runs:
        echo(f"no training Workflow of {repository} PR #{pr} is running on Argo")
    return ExitCode.OK


def closed_pull_request(ctx) -> int:
    """The pull request a ``pull_request`` / ``pull_request_target`` event with action ``closed``
    names; anything else is refused, so a workflow wired to the wrong event type cannot stop the
    runs it just started."""
    from mlops_ci.errors import UsageError

    if ctx.source != "github" or ctx.event not in ("pull_request", "pull_request_target") or not ctx.pr_number:
        raise UsageError("--stop needs --pr N outside a pull_request event",
                         hint="mlops-ci train --stop --pr N [--dry-run]")
    if ctx.action != "closed":
        raise UsageError(f"this {ctx.event} event is {ctx.action!r}, not 'closed': its pull request is still open",
                         hint="call workflows/pr-closed.yml on `pull_request: types: [closed]`, or pass --pr N")
    return int(ctx.pr_number)

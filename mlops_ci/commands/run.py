"""`mlops-ci run`: the pull-request flow — check, train, evaluate, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_config(p)
    _common.add_model(p)
    _common.add_record(p)
    _common.add_junit(p)
    p.add_argument("--force", action="store_true", help="train even if nothing that affects a model changed")
    p.add_argument("--report", type=Path, default=None, metavar="PATH",
                   help="where to write the Markdown report (default: .mlops-ci/report.md)")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print the report")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (stages and why, the training command) and do nothing")


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from mlops_ci.backends.publishers import LocalPublisher
    from mlops_ci.console import echo
    from mlops_ci.errors import ConfigError
    from mlops_ci.pipeline import default_backends, new_record, plan_pipeline, run_pipeline
    from mlops_ci.render.report import failure_lines, render_report

    try:
        ws = _common.workspace(args, check_paths=True)
    except ConfigError as err:
        if not args.dry_run:
            _common.record_config_failure(args, err)
        raise
    ctx = _common.context(ws)
    if args.dry_run:
        planned = plan_pipeline(ws, ctx, backends=default_backends(ws), models=ws.models(args.model),
                                force=args.force)
        echo(f"dry run at {ctx.head_sha[:12]} (base {(ctx.base_sha or 'none')[:12]}):")
        for model, entry in planned.models.items():
            plan = entry.plan
            echo(f"{model}: " + (f"skip: {plan.skip_reason}" if plan.skip_reason else
                                 f"would run {', '.join(plan.stages)}: {'; '.join(plan.reasons)}"))
            if entry.training and entry.training.reused:
                echo(f"  {entry.training.skip_reason}")
            elif entry.training and entry.training.command:
                echo("  train: " + shlex.join(entry.training.command))
        return ExitCode.OK
    backends = default_backends(ws)
    record = new_record(ctx, backends)
    try:
        run_pipeline(ws, ctx, backends=backends, models=ws.models(args.model), progress=_common.progress(),
                     force=args.force, record_path=args.record, record=record)
    finally:  # a run stopped by an error still reports it: nothing will be deployed, and why
        _common.write_junit(record, args.junit)
        where = LocalPublisher(args.report or ws.state_dir / "report.md",
                               print_report=not args.quiet and record.failure is None).publish(
            record, render_report(record, _common.links(ws)))
        if record.failure is None:
            for line in failure_lines(record):
                echo(line, stream=sys.stderr)
            echo(f"verdict: {record.verdict} (report: {where})", stream=sys.stderr)
    return ExitCode.GATE_FAILED if record.verdict == "fail" else ExitCode.OK

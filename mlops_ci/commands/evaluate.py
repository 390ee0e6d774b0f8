"""`mlops-ci evaluate`: candidate vs champion on the eval set, gates, and registration if they pass."""

from __future__ import annotations

import argparse

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_config(p)
    _common.add_model(p)
    _common.add_record(p)
    p.add_argument("--dry-run", action="store_true",
                   help="evaluate and apply the gates, but register nothing and leave the record as it is")


def run(args: argparse.Namespace) -> int:
    import sys
    from contextlib import nullcontext

    from mlops_ci.console import echo
    from mlops_ci.errors import RecordError
    from mlops_ci.pipeline import default_backends, open_record, recording, step_evaluate
    from mlops_ci.render.report import gate_failure_line

    ws = _common.workspace(args, check_paths=True)
    ctx = _common.context(ws)
    record = open_record(ws, ctx, args.record)
    if not record.models:
        raise RecordError(f"no run record for head {ctx.head_sha[:12]}", hint="run `mlops-ci train` first")
    backends = default_backends(ws)
    progress = _common.progress()
    failed = []
    with nullcontext() if args.dry_run else recording(record, args.record or ws.record_path):
        for model in ws.models(args.model) if args.model else list(record.models):
            entry = step_evaluate(ws, record, model, backends=backends, progress=progress, dry_run=args.dry_run)
            ev = entry.evaluation
            if ev is None:
                echo(f"{model}: nothing to evaluate (training skipped)")
                continue
            echo(f"{model}: evaluation {ev.status}")
            for g in ev.gates:
                echo(f"  {g.status:7} {g.message}")
            if entry.registration:
                echo(f"  reuses {model} v{entry.registration.version} (nothing new registered)" if entry.registration.reused
                     else f"  registered {model} v{entry.registration.version}")
            elif args.dry_run and ev.status != "fail":
                echo(f"  dry run: {model} would be registered (nothing was)")
            if ev.status == "fail":
                failed.append(gate_failure_line(model, ev))
    for line in failed:
        echo(line, stream=sys.stderr)
    return ExitCode.GATE_FAILED if failed else ExitCode.OK


"""`mlops-ci check`: data checks for the models a change affects (and, with a feature repository,
its breaking changes and skew: the features stage runs first)."""

from __future__ import annotations

import argparse

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_config(p)
    _common.add_model(p)
    _common.add_record(p)
    _common.add_junit(p)
    p.add_argument("--force", action="store_true", help="re-plan even if the record already has this head")


def run(args: argparse.Namespace) -> int:
    from mlops_ci.console import echo
    from mlops_ci.pipeline import open_record, recording, stage, step_check

    ws = _common.workspace(args, check_paths=True)
    record = open_record(ws, _common.context(ws), args.record)
    progress = _common.progress()
    failed = False
    with recording(record, args.record or ws.record_path):
        for model in ws.models(args.model):
            with stage("check", model):
                entry = step_check(ws, record, model, progress=progress, force=args.force)
            checks = entry.checks
            echo(f"{model}: checks {checks.status}" + (f" ({checks.skip_reason})" if checks.skip_reason else
                                                      f", {len(checks.findings)} finding(s)"))
            for f in checks.findings:
                echo(f"  {f.status:4} {f.dataset}: {f.message}")
            failed |= checks.status == "fail"
        features = record.features
        if features is not None:  # the feature repository's findings: breaking changes, skew
            for f in features.findings:
                echo(f"features: {f.status:4} {f.message}")
            for s in features.skew:
                if s.mismatch_count:
                    echo(f"features: fail skew in {s.where}: {s.mismatch_count} mismatch(es) for {s.service}")
            failed |= features.status == "fail"
    _common.write_junit(record, args.junit)
    return ExitCode.GATE_FAILED if failed else ExitCode.OK

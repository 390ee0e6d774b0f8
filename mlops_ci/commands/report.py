"""`mlops-ci report`: render the report from a run record and publish it."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_record_to_read(p, "render")
    p.add_argument("--out", type=Path, default=None, metavar="PATH",
                   help="where to write the Markdown (default: report.md beside the record)")
    p.add_argument("--quiet", "-q", action="store_true", help="write the file without printing the report")
    p.add_argument("--dry-run", action="store_true", help="print the report; write and publish nothing")


def run(args: argparse.Namespace) -> int:
    from mlops_ci.backends.publishers import LocalPublisher
    from mlops_ci.console import echo
    from mlops_ci.render.report import render_report

    env = _common.job_env()
    record = _common.record_of_head(args.record, env)
    markdown = render_report(record, _common.links(env=env))
    if args.dry_run:
        echo(markdown)
        return ExitCode.OK
    out = args.out or (args.record or _common.DEFAULT_RECORD).with_name("report.md")
    where = LocalPublisher(out, print_report=not args.quiet).publish(record, markdown)
    if args.quiet:
        echo(f"report written to {where} (verdict: {record.verdict})")
    return ExitCode.OK

"""`mlops-ci publish`: post the report of a run record to GitHub (or write it locally).

The record is read as untrusted input (size-capped, validated). Exit 0 once the report is
published, whatever its verdict (the checks job gates on the verdict, not this one); 5 when
GitHub refuses or fails, with the call and what to do.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

_SHA = re.compile(r"[0-9a-fA-F]{40}")


def _sha(value: str) -> str:
    if not _SHA.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a 40-character commit SHA")
    return value.lower()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--record", type=Path, default=Path(".mlops-ci/record.json"), metavar="PATH",
                   help="the run record to publish (default: .mlops-ci/record.json)")
    p.add_argument("--to", choices=("github", "local"), default=None,
                   help="where to publish (default: github inside GitHub Actions, else local)")
    p.add_argument("--pr", type=int, default=None, metavar="N",
                   help="the pull request to comment on (default: from the GitHub event or the record)")
    p.add_argument("--head-sha", type=_sha, default=None, metavar="SHA",
                   help="the head commit the report is about (default: the record's)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the comment, check-run conclusion and annotations that would be sent; send nothing")


def run(args: argparse.Namespace) -> int:
    import sys

    from mlops_ci.backends.publishers import GitHubPublisher, LocalPublisher
    from mlops_ci.console import echo
    from mlops_ci.records import load_record, write_text_atomic
    from mlops_ci.stages.report import render_report

    record = load_record(args.record)
    markdown = render_report(record)
    report_path = args.record.with_name("report.md")
    to = args.to or ("github" if os.environ.get("GITHUB_ACTIONS") == "true" else "local")
    if to == "local":
        if args.dry_run:
            echo(markdown)
            return 0
        LocalPublisher(report_path, print_report=False).publish(record, markdown)
        echo(f"report written to {report_path} (verdict: {record.verdict})")
        return 0
    publisher = GitHubPublisher.from_env(
        default_branch=record.context.default_branch, pr=args.pr, head_sha=args.head_sha,
        record_path=args.record, report_path=report_path,
        on_note=lambda line: echo(f"mlops-ci: {line}", stream=sys.stderr))
    if args.dry_run:
        echo(publisher.preview(record, markdown))
        return 0
    write_text_atomic(report_path, markdown)
    where = publisher.publish(record, markdown)
    echo(f"published the report (verdict: {record.verdict})" + (f": {where}" if where else ""))
    return 0

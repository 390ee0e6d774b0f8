"""`mlops-ci publish`: post the report of a run record to GitHub (or write it locally).

The record is read as untrusted input (size-capped, validated). Exit 0 once the report is
published, whatever its verdict (the checks job gates on the verdict, not this one); 5 when
GitHub refuses or fails, with the call and what to do.
"""

from __future__ import annotations

import argparse
import re

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode

_SHA = re.compile(r"[0-9a-fA-F]{40}")


def _sha(value: str) -> str:
    if not _SHA.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a 40-character commit SHA")
    return value.lower()


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_record_to_read(p, "publish")
    p.add_argument("--to", default=None, metavar="PUBLISHER",
                   help="where to publish: a publisher's name, e.g. github or local (default: github inside "
                        "GitHub Actions, else local)")
    p.add_argument("--pr", type=int, default=None, metavar="N",
                   help="the pull request to comment on (default: from the GitHub event or the record)")
    p.add_argument("--head-sha", type=_sha, default=None, metavar="SHA",
                   help="the head commit the report is about (default: the record's)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the comment, check-run conclusion and annotations that would be sent; send nothing")


def run(args: argparse.Namespace) -> int:
    import sys

    from mlops_ci.backends.publishers import PUBLISHERS
    from mlops_ci.console import echo
    from mlops_ci.errors import UsageError
    from mlops_ci.records import write_text_atomic
    from mlops_ci.render.report import render_report

    env = _common.job_env()
    record = _common.record_of_head(args.record, env)
    markdown = render_report(record, _common.links(env=env))
    record_path = args.record or _common.DEFAULT_RECORD
    report_path = record_path.with_name("report.md")
    to = args.to or ("github" if env.get("GITHUB_ACTIONS") == "true" else "local")
    if to not in PUBLISHERS:
        raise UsageError(f"--to {to!r} is not a publisher: use one of {', '.join(PUBLISHERS)}")
    publisher = PUBLISHERS[to].from_env(
        env, default_branch=record.context.default_branch, pr=args.pr, head_sha=args.head_sha,
        record_path=record_path, report_path=report_path,
        on_note=lambda line: echo(f"mlops-ci: {line}", stream=sys.stderr))
    if args.dry_run:
        echo(publisher.preview(record, markdown))
        return ExitCode.OK
    write_text_atomic(report_path, markdown)
    where = publisher.publish(record, markdown)
    if to == "local":
        echo(f"report written to {where} (verdict: {record.verdict})")
        return ExitCode.OK
    echo(f"published the report (verdict: {record.verdict})" + (f": {where}" if where else ""))
    if publisher.posted_to is not None:
        keep_claims(record, *publisher.posted_to, env=env)
    return ExitCode.OK


def keep_claims(record, pr: int, head_sha: str, *, env) -> None:
    """A pull request that ran without the shared registry (a fork: no secrets) reported metrics for
    its training fingerprint; where this job can reach the registry, keep them as the pull request's
    claim, for the merge job to show its reproduction beside. ``pr`` and ``head_sha`` are the ones the
    comment was posted for (found from the event); a claim never decides anything."""
    import re
    import sys

    from mlops_ci import registry
    from mlops_ci.backends.naming import choose
    from mlops_ci.backends.tracking import TRACKING
    from mlops_ci.config.schema import NAME_RE
    from mlops_ci.console import echo
    from mlops_ci.errors import FatalError

    uri = env.get("MLFLOW_TRACKING_URI", "")
    if record.registry != "embedded" or not uri.startswith(("http://", "https://")):
        return
    tracking = choose(TRACKING, None, role="tracking backend", setting="tracking.backend")(uri=uri)
    for name, entry in record.models.items():
        fp = entry.training.fingerprint if entry.training else None
        ev = entry.evaluation
        if (fp is None or not re.fullmatch(r"sha256:[0-9a-f]{64}", fp.digest or "") or ev is None
                or not NAME_RE.fullmatch(name)):
            continue
        metrics = {m.name: m.candidate for m in ev.metrics if m.candidate is not None}
        try:
            registry.record_claim(tracking, name, fingerprint=fp.digest, pr=pr, head_sha=head_sha, metrics=metrics)
        except (FatalError, ValueError) as err:
            echo(f"mlops-ci: warning: the claim of PR #{pr} for {name} was not kept: {err}", stream=sys.stderr)

"""`mlops-ci monitor`: the served version's traffic, from KServe's payload logs, against its
reference; the model's monitoring issue; the retraining pull request when drift persists.

`mlops-ci monitor receive` runs the receiver for KServe installs whose logger sends CloudEvents
to a URL: it writes them in the storage layout `mlops-ci monitor` reads.

Exit 0 whatever the traffic says (drift is reported in the issue and the record, not as a failed
job); 5 when a backend failed (the registry, GitHub, git, the refresh command).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def _until(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or time: write e.g. 2026-12-06 or "
                                         "2026-12-06T12:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _boundary(settings, window: str | None) -> datetime:
    """The last window boundary before now (midnight UTC for 1d): two scheduled runs of a day
    grade the same windows."""
    from mlops_ci.config.monitoring import parse_duration

    try:
        width = parse_duration(window or settings.window)
    except ValueError:
        width = parse_duration(settings.window)
    now = datetime.now(UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((now - epoch) // width) * width


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["receive", "shards", "profile", "merge"],
                   help="receive: run the CloudEvents receiver; shards, profile, merge: the fan-out over shards of "
                   "the windows' log objects (one pod each, argo/monitor-cron.yaml)")
    _common.add_config(p)
    _common.add_model(p)
    p.add_argument("--env", "-e", metavar="ENV", help="the environment whose served version is monitored "
                   "(default: the champion's, promotion.on_merge)")
    p.add_argument("--window", metavar="W", help="width of a window: 30m, 12h, 1d, 2w (default: monitoring.window)")
    p.add_argument("--windows", type=int, metavar="N", help="how many windows (default: monitoring.windows)")
    p.add_argument("--until", type=_until, metavar="T", help="the end of the last window, ISO 8601, UTC unless it says otherwise (default: the last window "
                   "boundary, e.g. midnight UTC for 1d windows)")
    p.add_argument("--logs", metavar="URL", help="where the payload logs are (default: monitoring.logs)")
    p.add_argument("--out", type=Path, metavar="PATH", help="the monitor record (default: "
                   ".mlops-ci/monitor/<model>-<env>.json)")
    p.add_argument("--no-issue", action="store_true", help="leave the monitoring issue alone")
    p.add_argument("--no-retrain", action="store_true", help="never open or update a retraining pull request")
    p.add_argument("--dry-run", action="store_true", help="grade the windows and say what would happen to the "
                   "issue and the retraining; write, send and store nothing")
    fan = p.add_argument_group("shards, profile, merge")
    fan.add_argument("--shards", type=int, metavar="N", help="shards: how many (1 to 64); prints the shard ids as "
                     "JSON (to --out when given)")
    fan.add_argument("--shard", type=int, metavar="K", help="profile: which shard (0 to --of minus 1)")
    fan.add_argument("--of", type=int, metavar="N", help="profile: out of how many")
    fan.add_argument("--profiles", type=Path, metavar="DIR", help="merge: the folder of the shards' profiles")
    receive = p.add_argument_group("receive")
    receive.add_argument("--root", type=Path, metavar="DIR", help="receive: the folder to write the logs to")
    receive.add_argument("--host", default="127.0.0.1", help="receive: the address to listen on (default 127.0.0.1)")
    receive.add_argument("--port", type=int, default=8080, help="receive: the port (default 8080; 0: a free one)")
    receive.add_argument("--marshaller", choices=["json", "parquet"], default="json",
                         help="receive: the format of the segments written (default json)")
    receive.add_argument("--namespace", default="", help="receive: the namespace of events without ce-namespace")
    receive.add_argument("--store-path", default="", help="receive: KServe's storage.path (a sub-folder)")
    receive.add_argument("--max-event-bytes", type=int, default=1 << 20,
                         help="receive: larger events get 413 (default 1 MiB)")
    receive.add_argument("--batch-events", type=int, default=256, help="receive: events per segment at most")
    receive.add_argument("--batch-bytes", type=int, default=4 << 20, help="receive: bytes buffered at most")
    receive.add_argument("--flush-interval", type=float, default=0.2,
                         help="receive: seconds an event waits for its segment at most (default 0.2)")


def _receive(args: argparse.Namespace) -> int:
    from mlops_ci.errors import UsageError
    from mlops_ci.monitor import receiver

    if args.root is None:
        raise UsageError("monitor receive needs --root DIR (where the logs are written)")
    return receiver.main(["--root", str(args.root), "--host", args.host, "--port", str(args.port),
                          "--marshaller", args.marshaller, "--namespace", args.namespace, "--store-path",
                          args.store_path, "--max-event-bytes", str(args.max_event_bytes), "--batch-events",
                          str(args.batch_events), "--batch-bytes", str(args.batch_bytes), "--flush-interval",
                          str(args.flush_interval)])


def _served(ws, model: str, env: str, options):
    from mlops_ci.pipeline import default_backends
    from mlops_ci.stages.monitor import served

    b = default_backends(ws)
    return served(ws, model, env, until=options.until, tracking=b.tracking, gitops=b.gitops, window=options.window,
                  windows=options.windows, logs=options.logs, store=options.store)


def _fan_out(args: argparse.Namespace, ws, model: str, env: str, options) -> int:
    """shards / profile: the parts before the merge (merge goes on like the whole command)."""
    import json

    from mlops_ci.console import echo
    from mlops_ci.errors import UsageError
    from mlops_ci.records import write_text_atomic
    from mlops_ci.stages import monitor_shards

    s = _served(ws, model, env, options)
    if args.action == "shards":
        if args.shards is None:
            raise UsageError("monitor shards needs --shards N")
        text = json.dumps(monitor_shards.shard_ids(s, args.shards))
    else:
        if args.shard is None or args.of is None or args.out is None:
            raise UsageError("monitor profile needs --shard K --of N --out PATH")
        text = json.dumps(monitor_shards.profile_shard(s, args.shard, args.of), separators=(",", ":"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out, text + "\n")
    if args.action == "shards" or args.out is None:
        echo(text)
    return ExitCode.OK


def run(args: argparse.Namespace) -> int:
    if args.action == "receive":
        return _receive(args)
    from mlops_ci.console import echo
    from mlops_ci.errors import UsageError
    from mlops_ci.pipeline import default_backends
    from mlops_ci.pipeline.monitor import MonitorOptions, monitor
    from mlops_ci.records.monitor import save_monitor_record
    from mlops_ci.render.monitor import console_summary

    ws = _common.workspace(args)
    models = [args.model] if args.model else list(ws.config.models)
    if len(models) != 1:
        raise UsageError("name the model: --model NAME (the config has several)")
    model = models[0]
    ws.model(model)
    env = args.env or ws.config.champion_env(model)
    if env is None:
        raise UsageError("name the environment: --env ENV", hint="promotion.on_merge is not set")
    ws.environment(env)
    options = MonitorOptions(until=args.until or _boundary(ws.model(model).monitoring, args.window),
                             window=args.window, windows=args.windows, logs=args.logs,
                             issue=not (args.no_issue or args.dry_run), retrain=not (args.no_retrain or args.dry_run),
                             store=not args.dry_run)
    if args.windows is not None and not 1 <= args.windows <= 366:
        raise UsageError(f"--windows {args.windows}: write 1 to 366")
    if args.window is not None:
        from mlops_ci.config.monitoring import parse_duration

        try:
            parse_duration(args.window)
        except ValueError as err:
            raise UsageError(f"--window: {err}") from None
    if args.action in ("shards", "profile"):
        return _fan_out(args, ws, model, env, options)
    merged = None
    if args.action == "merge":
        from mlops_ci.stages.monitor_shards import merged_record

        if args.profiles is None:
            raise UsageError("monitor merge needs --profiles DIR")
        merged = merged_record(_served(ws, model, env, options), args.profiles)
    record = monitor(ws, model, env, options, backends=default_backends(ws), env=ws.env,
                     progress=_common.progress(), record=merged)
    if args.dry_run:
        from mlops_ci.stages.retrain import why

        echo(console_summary(record))
        reason = why(record, ws.model(model).monitoring)
        latest = record.latest()
        echo(f"dry run: the issue would be {'opened or updated' if latest and latest.status == 'fail' else 'left closed or closed'}"
             f"; retraining {'would be asked for: ' + reason if reason else 'is not needed'}; nothing was written")
        return ExitCode.OK
    out = args.out or ws.root / ".mlops-ci" / "monitor" / f"{model}-{env}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_monitor_record(record, out)
    echo(console_summary(record))
    echo(f"record: {out}")
    _outputs(ws, record, out, options)
    failed = record.retrain is not None and record.retrain.action == "failed"
    return ExitCode.BACKEND if failed else ExitCode.OK


def _outputs(ws, record, out: Path, options) -> None:
    """In GitHub Actions: step outputs for the jobs after this one (the retraining job runs only
    when ``retrain`` is true, with the same ``until``), and the issue's Markdown as the summary."""
    from mlops_ci import github_actions
    from mlops_ci.render.monitor import issue_body
    from mlops_ci.stages.retrain import why

    needed = why(record, ws.model(record.model).monitoring) is not None
    github_actions.set_outputs({"status": record.status, "version": record.version,
                                "until": options.until.isoformat(timespec="seconds"),
                                "retrain": str(needed).lower(), "record": str(out),
                                "issue": record.issue.number if record.issue and record.issue.number else ""},
                               env=ws.env)
    github_actions.append_summary(issue_body(record), env=ws.env)

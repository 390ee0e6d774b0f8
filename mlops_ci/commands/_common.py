"""Options and set-up shared by the commands."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path


def add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, metavar="PATH",
                   help="path to .mlops-ci.yaml (default: the nearest one at or above the current folder)")


def add_model(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    p.add_argument("--model", "-m", required=required, metavar="NAME",
                   help="the model to work on" + ("" if required else " (default: every model in the config)"))


def add_record(p: argparse.ArgumentParser) -> None:
    p.add_argument("--record", type=Path, default=None, metavar="PATH",
                   help="the run record to read and update (default: .mlops-ci/record.json)")


def add_junit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--junit", type=Path, default=None, metavar="PATH",
                   help="also write the checks and gates as JUnit XML to PATH")


def write_junit(record, path: Path | None) -> None:
    if path is None:
        return
    from mlops_ci.records import write_text_atomic
    from mlops_ci.render.junit import render_junit

    write_text_atomic(path, render_junit(record))


def workspace(args: argparse.Namespace, *, check_paths: bool = False):
    """Load and validate the config, then build the runtime workspace from it. ``check_paths``:
    commands that run stages also need the files the config names (training script, data) to be
    there, or stop with a config error before anything runs."""
    from mlops_ci.backends import name_problems
    from mlops_ci.config import find_config, load_config
    from mlops_ci.workspace import Workspace

    path = args.config or find_config(Path.cwd())
    return Workspace.from_config(load_config(path, check_paths=check_paths, checks=[name_problems]))


def context(ws):
    from mlops_ci.context import detect_context

    return detect_context(ws.root, ws.config.default_branch)


def progress():
    from mlops_ci.console import ConsoleProgress

    return ConsoleProgress()


DEFAULT_RECORD = Path(".mlops-ci/record.json")


def add_record_to_read(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--record", type=Path, default=None, metavar="PATH",
                   help=f"the run record to {what} (default: .mlops-ci/record.json, only if it is the record of "
                        "the current head)")


def job_env() -> dict[str, str]:
    """This job's environment, read once by a command that has no workspace (report, publish) and
    handed on: the same source a workspace's ``env`` is."""
    import os

    return dict(os.environ)


def record_of_head(path: Path | None, env: Mapping[str, str]):
    """The run record at ``path``; without ``path``, the default record, refused unless it is the
    record of the head being worked on (a failed run's report never shows another commit's record).
    Its provenance comes from this job's event (mlops_ci.context.github.record_provenance)."""
    from mlops_ci.context import detect_context
    from mlops_ci.context.github import record_provenance
    from mlops_ci.errors import FatalError, RecordError
    from mlops_ci.records import load_record

    record = load_record(path or DEFAULT_RECORD, provenance=record_provenance(env))
    if path is not None:
        return record
    try:
        head = detect_context(Path.cwd(), record.context.default_branch).head_sha
    except FatalError as err:
        raise RecordError(f"{DEFAULT_RECORD}: cannot tell which commit is checked out here ({err.message})",
                          hint="pass --record PATH to use that record anyway") from err
    if head != record.context.head_sha:
        raise RecordError(f"{DEFAULT_RECORD} is the record of commit {record.context.head_sha[:12]}, not of the "
                          f"head {head[:12]}: its run did not finish here, or another commit ran since",
                          hint="run `mlops-ci run` for this head, or pass --record PATH to use that record anyway")
    return record


def links(ws=None, env: Mapping[str, str] | None = None):
    """Where a report rendered by this command may link: this job's run (GitHub Actions), the
    MLflow UI and the Argo UI the config names, the GitOps repository's pull requests."""
    from mlops_ci.render.markdown import Links

    if ws is None:
        return Links.from_env(env if env is not None else job_env())
    bases = [m.train.argo.server_url.rstrip("/") + "/workflows/" for m in ws.config.models.values()
             if m.train.argo is not None and m.train.argo.server_url]
    repo = ws.config.gitops.github_repository
    if repo:
        bases.append(f"https://github.com/{repo}/pull/")
    return Links.from_env(ws.env, tracking_uri=ws.tracking_uri, bases=tuple(bases))


def record_config_failure(args: argparse.Namespace, err) -> None:
    """A run stopped by its config still leaves the record (and report) of its head, saying so:
    else `report`/`publish` would have nothing, or another commit's record, to show."""
    from mlops_ci.config import find_config
    from mlops_ci.context import detect_context
    from mlops_ci.errors import FatalError
    from mlops_ci.records import RunRecord, StageFailure, save_record
    from mlops_ci.render.report import render_report
    from mlops_ci.workspace import STATE_DIR

    try:
        folder = (args.config or find_config(Path.cwd())).resolve().parent
        ctx = detect_context(folder, "main")
    except FatalError:
        return  # no config file, or no git checkout: no head to record anything for
    record = RunRecord(context=ctx, failure=StageFailure(stage="config", message=" ".join(str(err).split())[:500],
                                                         exit_code=err.exit_code))
    state = folder / STATE_DIR
    save_record(record, state / "record.json")
    from mlops_ci.records import write_text_atomic

    write_text_atomic(state / "report.md", render_report(record, links()))

"""`mlops-ci train`: train the candidate (torchrun on this machine by default)."""

from __future__ import annotations

import argparse

from mlops_ci.commands import _common


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_config(p)
    _common.add_model(p)
    _common.add_record(p)
    p.add_argument("--force", action="store_true", help="train even if nothing that affects the model changed")
    p.add_argument("--backend", choices=("torchrun", "argo"), default=None,
                   help="where to train (default: train.backend of the config); argo needs train.argo")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would run: the torchrun command, or the Workflow as `argo submit`")


def run(args: argparse.Namespace) -> int:
    import shlex

    from mlops_ci.console import echo
    from mlops_ci.errors import TrainingError
    from mlops_ci.pipeline import default_backends, open_record, step_train
    from mlops_ci.records import save_record

    ws = _common.workspace(args)
    record = open_record(ws, _common.context(ws), args.record)
    backends = default_backends(ws)
    progress = _common.progress()
    failed = []
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
    if not args.dry_run:
        save_record(record, args.record or ws.record_path)
    if failed:
        raise TrainingError("training failed: " + "; ".join(failed))
    return 0

"""`mlops-ci serve`: run a registered version locally as KServe will serve it (MLServer, V2 REST)."""

from __future__ import annotations

import argparse

from mlops_ci.commands import _common
from mlops_ci.errors import ExitCode


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_config(p)
    _common.add_model(p, required=True)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", metavar="N", help="the registered version to serve")
    which.add_argument("--alias", metavar="A", help="the version that MLflow alias names")
    which.add_argument("--env", "-e", metavar="ENV", help="the version that environment's alias names (default: "
                       "the champion's environment, promotion.on_merge)")
    p.add_argument("--port", type=int, metavar="P", help="REST port on 127.0.0.1 (default: a free one)")


def _example(ws, model: str) -> str | None:
    """One eval row as a V2 request (the label left out), or None when the eval data is not here."""
    from mlops_ci.data.tables import read_frame
    from mlops_ci.runtime import v2

    cfg = ws.model(model)
    local = ws.root / cfg.data.eval
    if not local.is_file():
        return None
    frame = v2.sendable(read_frame(local, name=cfg.data.eval, fmt=cfg.data.format).drop(
        columns=[cfg.data.label], errors="ignore")).head(1)
    return v2.request_json(frame) if len(frame) else None


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    import shlex
    import signal
    import tempfile
    import time
    from pathlib import Path

    from mlops_ci.console import echo
    from mlops_ci.errors import NotFound, UsageError
    from mlops_ci.pipeline import default_backends
    from mlops_ci.runtime import mlserver, runtime_for

    ws = _common.workspace(args)
    cfg = ws.model(args.model)
    runtime, why = runtime_for(cfg.serving)
    if runtime is None:
        raise UsageError(f"{args.model} cannot be served here: {why}")
    if args.port is not None and not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port (1 to 65535)")
    if args.port is not None:
        mlserver.require_free(args.port)  # before a minute of building
    tracking = default_backends(ws).tracking
    if args.version:
        info = tracking.get_version(args.model, args.version)
    else:
        env = args.env or (None if args.alias else ws.config.champion_env(args.model))
        if env is None and not args.alias:
            raise UsageError("name what to serve: --version N, --alias A or --env ENV",
                             hint="no environment serves the champion (promotion.on_merge is not set)")
        alias = args.alias or ws.config.alias_for(ws.environment(env))
        info = tracking.version_by_alias(args.model, alias)
        if info is None:
            raise NotFound(f"no version of {args.model} holds the alias {alias!r}",
                           hint="promote one first, or pass --version N")
    progress = _common.progress()
    # a CI timeout or a service manager sends SIGTERM: stop the server as Ctrl-C does; and SIGINT
    # stops it even where it was inherited as ignored (a job started in the background by a script)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    local = Path(tracking.local_copy(info.artifact_uri))
    env_ = mlserver.environment(local, progress=progress)
    served = False  # an interrupt once the server is up is the way to stop it, wherever it lands
    with tempfile.TemporaryDirectory(prefix="mlops-ci-serve-") as tmp:
        server = mlserver.MLServer(env_, local, args.model, Path(tmp), port=args.port)
        try:
            with server:
                with progress.step(f"starting MLServer with {args.model} v{info.version}"):
                    ready = server.wait_ready()
                served = True
                echo(f"serving {args.model} v{info.version} with MLServer ({mlserver.IMPLEMENTATION}), ready in "
                     f"{ready:.1f}s, as KServe serves modelFormat mlflow over protocol v2")
                echo(f"  {server.url}/v2/models/{args.model}  (V2 REST; log: {server.log})")
                example = _example(ws, args.model)
                if example is not None:
                    echo("  try it with one eval row:")
                    echo("  curl -s -X POST " + shlex.quote(server.infer_url)
                         + " -H 'Content-Type: application/json' -d " + shlex.quote(example))
                echo("  Ctrl-C stops it")
                while server.alive():
                    time.sleep(0.2)
        except KeyboardInterrupt:
            if not served:
                raise
            server.stop()
            echo("stopped")
            return ExitCode.OK
        raise mlserver.ServeError(f"MLServer stopped by itself (code {server.proc.returncode}); the last "
                                  f"lines of its log:\n{server.log_tail()}")

"""`mlops-ci`: one subcommand per module in mlops_ci.commands.

Only argparse and the command modules' light `add_arguments` run before dispatch, so
`mlops-ci --help` imports none of mlflow, torch, dvc or kubernetes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mlops_ci import __version__
from mlops_ci.cli.errors import handle
from mlops_ci.errors import ExitCode
from mlops_ci.masking import MaskingStream

# name -> (module in mlops_ci.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "the pull-request flow: check, train, evaluate and report, for the models a change affects"),
    "check": ("check", "data checks: schema, null rates and drift of head's data against base's"),
    "train": ("train", "train the candidate with the configured trainer (torchrun locally)"),
    "evaluate": ("evaluate", "evaluate the candidate against the champion and apply the gates"),
    "report": ("report", "render the report from a run record and publish it"),
    "publish": ("publish", "post the report of a run record to GitHub (comment, check run, job summary)"),
    "promote": ("promote", "commit the serving manifests for a model version and move its alias"),
    "rollback": ("rollback", "restore the previous model version in an environment (revert commit, alias, hold)"),
    "rollout": ("rollout", "a canary rollout's state; advance it a step (as its analysis says) or abort it"),
    "features": ("features", "the feature repository (Feast): its plan against each environment, apply it to an "
                 "environment's registry, or check an online store for skew"),
    "serve": ("serve", "serve a registered version locally as KServe will (MLServer, V2 REST on 127.0.0.1)"),
    "monitor": ("monitor", "the served version's traffic (KServe's payload logs) against its reference; the "
                "monitoring issue; the retraining pull request"),
    "context": ("context", "print where and why mlops-ci runs (git or GitHub event) as JSON"),
    "config": ("config", "validate .mlops-ci.yaml or print its JSON Schema"),
    "demo": ("demo", "run the whole loop on a scratch copy of examples/churn"),
    "render": ("render", "print what mlops-ci would submit or commit: the training Workflow"),
    "command": ("command", "act on a /mlops-ci command in a pull-request comment (train, promote, rollback)"),
}

EPILOG = """exit codes:
  0 ok · 1 gates or checks failed · 2 bad command line · 3 invalid .mlops-ci.yaml
  4 unusable input (data, git state, run record) · 5 a backend failed (MLflow, DVC, git, torchrun)
  70 internal error · 130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-ci",
        description="GitOps CI/CD for machine-learning repositories.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mlops-ci {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(f"mlops_ci.commands.{module}")
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    # every byte the process prints, ours or a library's, passes the masking filter
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = MaskingStream(out), MaskingStream(err)
    try:
        return handle(lambda: args._module.run(args))
    finally:
        sys.stdout, sys.stderr = out, err


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

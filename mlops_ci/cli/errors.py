"""The single top-level handler: exceptions to one message and an exit code.

    FatalError (and subclasses)  -> its message on stderr, its exit_code (see errors.ExitCode)
    KeyboardInterrupt            -> "interrupted", 130
    anything else                -> a bug: short message, traceback in .mlops-ci/crash.log at the
                                    repository root (where .mlops-ci.yaml is; else here), 70
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from mlops_ci.errors import ExitCode, FatalError
from mlops_ci.masking import mask

CRASH_LOG = Path(".mlops-ci") / "crash.log"


def crash_log() -> Path:
    """Where a bug's traceback goes: ``.mlops-ci/crash.log`` beside the repository's config, found from
    the working directory upwards (so a run from a subfolder writes where the run's state is), as an
    absolute path the message can name."""
    from mlops_ci.config.loader import find_config

    start = Path.cwd()
    try:
        root = find_config(start).resolve().parent
    except Exception:  # no config above: the working directory
        root = start.resolve()
    return root / CRASH_LOG


def _err(text: str) -> None:
    sys.stderr.write(mask(text) + "\n")
    sys.stderr.flush()


def handle(fn: Callable[[], int]) -> int:
    try:
        return fn()
    except FatalError as err:
        _err(f"mlops-ci: error: {err}")
        return err.exit_code
    except KeyboardInterrupt:
        _err("mlops-ci: interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as err:  # a bug: keep the traceback, but out of the user's face
        text = mask("".join(traceback.format_exception(err)))
        where = "stderr"
        try:
            path = crash_log()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            where = str(path)
        except OSError:
            sys.stderr.write(text)
        _err(f"mlops-ci: internal error: {type(err).__name__}: {err} (traceback in {where}; "
             "please report it at https://github.com/mlops-ci/mlops-ci/issues)")
        return ExitCode.INTERNAL

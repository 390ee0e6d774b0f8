"""The single top-level handler: exceptions to one message and an exit code.

    FatalError (and subclasses)  -> its message on stderr, its exit_code (see errors.ExitCode)
    KeyboardInterrupt            -> "interrupted", 130
    anything else                -> a bug: short message, traceback in .mlops-ci/crash.log, 70
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from mlops_ci.errors import ExitCode, FatalError
from mlops_ci.masking import mask

CRASH_LOG = Path(".mlops-ci") / "crash.log"


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
            CRASH_LOG.parent.mkdir(parents=True, exist_ok=True)
            CRASH_LOG.write_text(text, encoding="utf-8")
            where = str(CRASH_LOG)
        except OSError:
            sys.stderr.write(text)
        _err(f"mlops-ci: internal error: {type(err).__name__}: {err} (traceback in {where}; "
             "please report it at https://github.com/mlops-ci/mlops-ci/issues)")
        return ExitCode.INTERNAL

"""Keep secrets out of every log line, comment, report and artifact.

Secrets are the values of environment variables whose names look like credentials
(``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ...) plus anything that has the shape of a GitHub
token, a bearer header or credentials embedded in a URL. All output of mlops-ci goes through
:func:`mask`: the console, the logging filter, rendered reports and written records.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from functools import lru_cache

MASK = "***"
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)", re.I)
_MIN_SECRET_LEN = 6  # shorter values ("true", "1") would mask ordinary words

_PATTERNS = [
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)(?<=authorization: )(?!bearer )\S{8,}"),
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),  # AWS access key ids
]
# scheme://user:password@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<pre>://[^/:@\s]+:)[^/@\s]+(?=@)")


def secret_values(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    env = os.environ if env is None else env
    values = {
        value
        for name, value in env.items()
        if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LEN
    }
    # longest first, so that a secret containing another is masked whole
    return tuple(sorted(values, key=len, reverse=True))


@lru_cache(maxsize=8)
def _compiled(values: tuple[str, ...]) -> re.Pattern[str] | None:
    if not values:
        return None
    return re.compile("|".join(re.escape(v) for v in values))


def mask(text: str, env: Mapping[str, str] | None = None) -> str:
    """Return ``text`` with every known secret replaced by ``***``."""
    if not text:
        return text
    pattern = _compiled(secret_values(env))
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for pat in _PATTERNS:
        text = pat.sub(MASK, text)
    return _URL_PASSWORD.sub(r"\g<pre>" + MASK, text)


class MaskingFilter(logging.Filter):
    """A logging filter that masks secrets in every record's rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not crash the run
            message = str(record.msg)
        record.msg = mask(message)
        record.args = None
        return True


class MaskingStream:
    """A text stream that masks every write before passing it on (wraps stdout / stderr)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(mask(text))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

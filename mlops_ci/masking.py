"""Keep secrets out of every log line, comment, report and artifact.

Secrets are the values of environment variables whose names look like credentials
(``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*_KEY``, ``*_PAT``, ``*CONNECTION_STRING*``, ...)
plus anything that has the shape of a token: GitHub tokens, bearer headers, AWS key ids, the
signature of a SAS URL, token-like query parameters and credentials in URLs (``user:password@``,
even with a ``/`` or ``@`` in the password, and a lone token as the user). All output of
mlops-ci goes through :func:`mask`: the console, the logging filter, rendered reports and
written records.

A secret is also found in the forms other output layers turn it into: Markdown-escaped
(``mlf\\_tok``), JSON-escaped (``\\"``, ``\\u00f6``), Python ``repr`` and URL-encoded. The
renderer masks every value before it escapes it (mlops_ci.render.markdown); these variants
catch what reaches text by another road.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from urllib.parse import quote

MASK = "***"
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|"
                          r"CONNECTION_?STRING|_KEY$|^KEY$|_PAT$|^PAT$|_SAS$|SAS_|SIGNATURE|COOKIE)", re.I)
_NOT_SECRET = re.compile(r"(_PATH|_FILE|_DIR|_URL_?BASE|_HOST|_PORT|_USERNAME|_USER|_ID)$", re.I)
_MIN_SECRET_LEN = 6  # shorter values ("true", "1") would mask ordinary words
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~$&])")  # what mlops_ci.render.markdown escapes

_PATTERNS = [
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)(?<=authorization: )(?!bearer )\S{8,}"),
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),  # AWS access key ids
    # query parameters that carry credentials (a SAS URL's sig, OAuth codes and tokens)
    re.compile(r"(?i)(?<=[?&;])(?:sig|signature|token|access_token|id_token|refresh_token|api_?key|apikey|key|"
               r"code|password|passwd|secret|client_secret|x-amz-signature|x-amz-credential|x-goog-signature)"
               r"=[^&#\s\"'<>]+"),
]
# scheme://user:password@host -> scheme://user:***@host (the password may hold '/' or '@': up to the
# last '@' before the host); scheme://<token>@host -> scheme://***@host for a token-like user
_URL_PASSWORD = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^/:@\s]*:)[^\s]*?(?=@[^@\s]*(?:[/\s?#]|$))", re.I)
_URL_TOKEN_USER = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://)[A-Za-z0-9._~%+=-]{16,}(?=@)", re.I)


@lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) and not _NOT_SECRET.search(name)


def is_credential_name(name: str) -> bool:
    """Whether a variable or parameter called ``name`` holds a credential (its value is a secret)."""
    return _secret_name(name)


def secret_values(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    env = os.environ if env is None else env
    values = {value for name, value in env.items() if len(value) >= _MIN_SECRET_LEN and _secret_name(name)}
    # longest first, so that a secret containing another is masked whole
    return tuple(sorted(values, key=len, reverse=True))


def variants(value: str) -> set[str]:
    """The forms a secret takes in other layers' output: itself, Markdown-escaped, JSON-escaped
    (ASCII and not), inside ``repr``, URL-encoded."""
    forms = {value, _MD_SPECIAL.sub(r"\\\1", value), json.dumps(value)[1:-1],
             json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1], quote(value, safe=""),
             quote(value, safe="/"), value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}
    return {f for f in forms if len(f) >= _MIN_SECRET_LEN}


@lru_cache(maxsize=8)
def _compiled(values: tuple[str, ...]) -> re.Pattern[str] | None:
    if not values:
        return None
    forms = sorted({f for v in values for f in variants(v)}, key=len, reverse=True)
    return re.compile("|".join(re.escape(v) for v in forms))


def mask(text: str, env: Mapping[str, str] | None = None) -> str:
    """Return ``text`` with every known secret (in any of its forms) replaced by ``***``."""
    if not text:
        return text
    return _mask_with(_compiled(secret_values(env)), text)


def masker(env: Mapping[str, str] | None = None) -> Callable[[str], str]:
    """:func:`mask` with the environment's secrets read once: for masking many strings in a row
    (every string of a record)."""
    pattern = _compiled(secret_values(env))
    return lambda text: _mask_with(pattern, text) if text else text


def _mask_with(pattern: re.Pattern[str] | None, text: str) -> str:
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for pat in _PATTERNS:
        text = pat.sub(MASK, text)
    text = _URL_PASSWORD.sub(r"\g<pre>" + MASK, text)
    return _URL_TOKEN_USER.sub(r"\g<pre>" + MASK, text)


def strip_credentials(url: str) -> str:
    """``url`` without userinfo and without its query and fragment (where tokens travel): what may
    leave this process as a plain parameter (an Argo Workflow's, a pod's environment). Userinfo
    goes up to the last ``@``, so a password holding ``/`` or ``@`` goes with it."""
    match = re.match(r"([a-z][a-z0-9+.-]*)://([^\s]*)", url, re.I)
    if match is None:
        return url
    scheme, rest = match.groups()
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        rest = rest[authority.rindex("@") + 1:]
    elif re.fullmatch(r"[^:]*:(?!\d*$).*", authority) and "@" in rest:  # user:pass/word@host: not a port
        rest = rest[rest.rindex("@") + 1:]
    return f"{scheme}://{rest}"


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

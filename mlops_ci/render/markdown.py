"""Markdown helpers every rendered output uses: masking and escaping untrusted text, code spans,
links, numbers.

A record read from an artifact is untrusted, so text from it (PR titles, branch names, column
names, category values, error output) goes through :func:`esc`, :func:`code` or :func:`link`:
it cannot inject Markdown, HTML, mentions or autolinks into a comment. Each of them masks the
value first, then escapes it: a secret is never escaped into a form the masker would miss.
Links point only where :class:`Links` allows (URLs the publishing job built itself).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mlops_ci.masking import mask, strip_credentials

ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skipped": "⏭️"}
# `$`: GitHub renders $...$ as math; `&`: an entity (&commat; is a mention); every one is a valid
# CommonMark backslash escape
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~$&])")
# control characters, line and paragraph separators, bidirectional overrides
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SAFE_URL = re.compile(r"https?://[^\s<>()\[\]`'\"\\]+")
_REPOSITORY = re.compile(r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}")


def plain(text: object) -> str:
    """``text`` masked, on one line, without control characters (still to be escaped)."""
    return _CONTROL.sub(" ", mask(str(text)))


def esc(text: object) -> str:
    """Mask, then escape untrusted text for Markdown (also neutralises @mentions, HTML, entities
    and GitHub's autolinks of bare URLs: a zero-width space after ``://`` and ``www.`` keeps them
    plain text)."""
    s = _MD_SPECIAL.sub(r"\\\1", plain(text))
    s = s.replace("://", ":\u200b//").replace("www.", "www\u200b.")
    return s.replace("@", "@\u200b")


def code(text: object) -> str:
    """A code span of masked untrusted text (no backtick can close it early)."""
    return "`" + plain(text).replace("`", "'") + "`"


@dataclass(frozen=True)
class Links:
    """Where the report may link: prefixes of URLs the rendering job built itself (its own run,
    the configured MLflow and Argo UIs), never a URL a record brings. ``run_url``: this job's run."""

    allowed: tuple[str, ...] = ()
    run_url: str | None = None

    def allows(self, url: str | None) -> bool:
        return bool(url) and _SAFE_URL.fullmatch(url) is not None and any(url.startswith(p) for p in self.allowed)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, tracking_uri: str | None = None,
                 bases: tuple[str, ...] = ()) -> Links:
        """The current GitHub Actions run (GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_RUN_ID),
        the MLflow UI of ``tracking_uri`` (or MLFLOW_TRACKING_URI) and ``bases``."""
        allowed: list[str] = []
        run_url = None
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        repo, run_id = env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_RUN_ID", "")
        if _SAFE_URL.fullmatch(server) and _REPOSITORY.fullmatch(repo) and run_id.isdigit():
            run_url = f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}"
            allowed.append(run_url)
        uri = tracking_uri or env.get("MLFLOW_TRACKING_URI") or ""
        if uri.startswith(("http://", "https://")):
            allowed.append(strip_credentials(uri).rstrip("/") + "/#/experiments/")
        allowed += [b for b in bases if b and _SAFE_URL.fullmatch(b)]
        return cls(allowed=tuple(allowed), run_url=run_url)


def fenced(lines: list[str]) -> list[str]:
    """Untrusted lines for a fenced code block: masked, control characters out, and no run of
    backticks that could close the fence."""
    return [re.sub(r"`{3,}", lambda m: "`\u200b" * len(m.group()), plain(line)) for line in lines]


def cell(markdown: str) -> str:
    """Markdown for a table cell: a ``|`` (even in a code span) would split the cell, so it is
    escaped; GitHub's table parser removes that backslash before rendering the cell."""
    return re.sub(r"(?<!\\)\|", r"\\|", markdown)


def link(text: object, url: str | None, links: Links) -> str:
    """A Markdown link whose text is escaped, where ``links`` allows ``url``; else the text alone."""
    if links.allows(url):
        return f"[{esc(text)}]({url})"
    return esc(text)


def num(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "—"
    if math.isnan(x):
        return "NaN"
    return f"{x:.{digits}f}"


def count(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"

"""Markdown helpers every rendered output uses: escaping untrusted text, code spans, links, numbers.

A record read from an artifact is untrusted, so text from it (PR titles, branch names, column
names, category values, error output) goes through :func:`esc`, :func:`code` or :func:`link`:
it cannot inject Markdown, HTML, mentions or autolinks into a comment.
"""

from __future__ import annotations

import math
import re

ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skipped": "⏭️"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~$])")  # `$`: GitHub renders $...$ as math
_SAFE_URL = re.compile(r"https?://[^\s<>()\[\]`'\"\\]+")


def esc(text: object) -> str:
    """Escape untrusted text for Markdown (also neutralises @mentions, HTML and GitHub's autolinks
    of bare URLs: a zero-width space after ``://`` and ``www.`` keeps them plain text)."""
    s = str(text).replace("\r", " ").replace("\n", " ")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    s = s.replace("://", ":\u200b//").replace("www.", "www\u200b.")
    return s.replace("@", "@\u200b")


def code(text: object) -> str:
    s = str(text).replace("`", "'").replace("\n", " ").replace("\r", " ")
    return f"`{s}`"


def cell(markdown: str) -> str:
    """Markdown for a table cell: a ``|`` (even in a code span) would split the cell, so it is
    escaped; GitHub's table parser removes that backslash before rendering the cell."""
    return re.sub(r"(?<!\\)\|", r"\\|", markdown)


def link(text: object, url: str | None) -> str:
    """A Markdown link whose text is escaped; a URL that is not plain http(s) is shown as code."""
    if url and _SAFE_URL.fullmatch(url):
        return f"[{esc(text)}]({url})"
    return esc(text) + (f" ({code(url)})" if url else "")


def num(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "—"
    if math.isnan(x):
        return "NaN"
    return f"{x:.{digits}f}"


def count(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"

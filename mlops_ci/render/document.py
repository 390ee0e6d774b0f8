"""A rendered report as structure: lines of Markdown and collapsible sections, so that a report
that must fit GitHub's limits drops whole sections, never a cut through text it cannot parse.

Sections render to ``<details><summary>…</summary> … </details>``; trimming replaces the largest
ones by nothing until the report fits, then (only if still too long) cuts at a line break,
closing an open code fence. A ``</details>`` inside a code span of untrusted text is just text
here: the structure, not a regular expression over the output, says where a section ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mlops_ci.masking import mask

_FENCE = re.compile(r"^\s*```", re.M)


@dataclass(frozen=True)
class Details:
    """A collapsible section: its summary and its lines (Markdown, already escaped)."""

    summary: str
    lines: tuple[str, ...]

    def markdown(self) -> str:
        return "\n".join([f"<details><summary>{self.summary}</summary>", "", *self.lines, "", "</details>"])

    def masked(self) -> Details:
        return Details(mask(self.summary), tuple(mask(line) for line in self.lines))


Block = str | Details


def details(summary: str, lines: Iterable[str]) -> Details:
    return Details(summary, tuple(lines))


def join(blocks: Iterable[Block]) -> str:
    return "\n".join(b.markdown() if isinstance(b, Details) else b for b in blocks)


class Report(str):
    """The rendered Markdown (a ``str``) that keeps the blocks it was joined from."""

    blocks: tuple[Block, ...]

    def __new__(cls, blocks: Sequence[Block]) -> Report:
        text = super().__new__(cls, join(blocks))
        text.blocks = tuple(blocks)
        return text

    def masked(self) -> Report:
        return Report([b.masked() if isinstance(b, Details) else mask(b) for b in self.blocks])


def masked(markdown: str) -> str:
    """``markdown`` masked, keeping the structure of a :class:`Report`."""
    return markdown.masked() if isinstance(markdown, Report) else mask(markdown)


def fit(markdown: str, limit: int, pointer: str) -> str:
    """``markdown`` cut to at most ``limit`` characters, with ``pointer`` saying where the rest is.

    A :class:`Report` drops its sections first, the largest first; if that is not enough the text
    is cut at a line break (closing an open code fence). Unchanged when it already fits."""
    if len(markdown) <= limit:
        return str(markdown)
    note = f"\n\n> ✂️ This report was trimmed to fit: {pointer}\n"
    budget = limit - len(note)
    if budget <= 0:
        return note.strip()[:limit]
    blocks: list[Block] = list(getattr(markdown, "blocks", None) or [str(markdown)])
    text = join(blocks)
    while len(text) > budget:
        sections = [i for i, b in enumerate(blocks) if isinstance(b, Details)]
        if not sections:
            break
        largest = max(sections, key=lambda i: len(blocks[i].markdown()))
        blocks[largest] = ""
        text = join(blocks)
    text = re.sub(r"\n{3,}", "\n\n", text)
    if len(text) > budget:
        cut = text[:budget - 4]  # room to close a code fence
        if "\n" in cut:
            cut = cut[:cut.rindex("\n")]
        if len(_FENCE.findall(cut)) % 2:
            cut += "\n```"
        text = cut
    return text.rstrip("\n") + note

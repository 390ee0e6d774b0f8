"""Lineage written to git (commit trailers, manifest annotations, GitHub Deployments): built only
from the trusted side, never from a run record.

Two sources: the promoting job's own context (:class:`Source`: the commit it runs on or the head
a writer's command pinned, the pull request its event names) and the registry version's tags
(where the model was trained, by which run, from which data: written by the job that trained
it). A record may name which version to promote; what travels with it comes from here. Every
value is checked (SHAs, numbers, owner/name, content ids) and trailers refuse control
characters, so no value can forge another trailer (`git interpret-trailers` reads one per line).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from mlops_ci import registry
from mlops_ci.errors import PromotionError

SHA = re.compile(r"[0-9a-f]{40}")
PR = re.compile(r"[1-9][0-9]{0,9}")
REPOSITORY = re.compile(r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}")
CONTENT_ID = re.compile(r"md5:[0-9a-f]{32}|git:[0-9a-f]{40}|feat:[0-9a-f]{40}")
FEATURE_SERVICE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,99}@[0-9a-f]{12}")
RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_TRAILER = 500


@dataclass(frozen=True)
class Source:
    """What the promoting job itself knows: the commit it ships from (the pushed merge commit, the
    local HEAD, or the head a writer's command pinned) and the pull request its event names."""

    commit: str | None = None
    pr: int | None = None
    repository: str | None = None

    def __post_init__(self) -> None:
        if self.commit is not None and not SHA.fullmatch(self.commit):
            raise PromotionError(f"{self.commit!r} is not a 40-character commit SHA")
        if self.pr is not None and not (isinstance(self.pr, int) and 0 < self.pr < 10**10):
            raise PromotionError(f"{self.pr!r} is not a pull request number")
        if self.repository is not None and not REPOSITORY.fullmatch(self.repository):
            raise PromotionError(f"{self.repository!r} is not owner/name")

    @classmethod
    def of(cls, ctx) -> Source:
        """From a context the job built itself (the event or the local checkout)."""
        return cls(commit=ctx.head_sha, pr=ctx.pr_number,
                   repository=ctx.repository if ctx.repository and REPOSITORY.fullmatch(ctx.repository) else None)


def _kept(value: str | None, pattern: re.Pattern[str]) -> str:
    return value if value and pattern.fullmatch(value) else ""


def of_version(tags: Mapping[str, str], run_id: str | None, source: Source | None = None) -> dict[str, str]:
    """The lineage of a registered version: its run and data from the registry's tags, the commit
    and pull request from ``source`` (else from the tags); ``trained-at`` where it was trained, when
    that is not the commit that ships it (a merge ships the pull request's version)."""
    source = source or Source()
    trained_at = _kept(tags.get(registry.HEAD_SHA), SHA)
    lineage = {
        "run-id": _kept(run_id or tags.get(registry.TRAINING_RUN), RUN_ID),
        "source-commit": source.commit or trained_at,
        "source-pr": str(source.pr) if source.pr else _kept(tags.get(registry.PR), PR),
        "source-repository": source.repository or _kept(tags.get(registry.REPOSITORY), REPOSITORY),
    }
    if trained_at and trained_at != lineage["source-commit"]:
        lineage["trained-at"] = trained_at
    for role in ("train", "eval"):
        lineage[f"data-{role}"] = _kept(tags.get(registry.DATA_PREFIX + role), CONTENT_ID)
    lineage["features-commit"] = _kept(tags.get(registry.FEATURES_COMMIT), SHA)
    lineage["feature-service"] = _kept(tags.get(registry.FEATURE_SERVICE), FEATURE_SERVICE)
    return {k: v for k, v in lineage.items() if v}


def trailer(key: str, value: str) -> str:
    """``Key: value`` for a commit message; a value with a control character (a newline would start
    another trailer) is refused, a long one cut."""
    if _CONTROL.search(value):
        raise PromotionError(f"the {key} trailer holds a control character: refused (it could forge trailers)")
    return f"{key}: {value[:MAX_TRAILER]}"


def trailers(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(trailer(k, v) for k, v in pairs if v)

"""Publishers: where the report of a run goes."""

from __future__ import annotations

from mlops_ci.backends.publishers.base import Publisher
from mlops_ci.backends.publishers.github import GitHubPublisher
from mlops_ci.backends.publishers.local import LocalPublisher

PUBLISHERS: dict[str, type] = {
    "local": LocalPublisher,
    "github": GitHubPublisher,
}

__all__ = ["PUBLISHERS", "GitHubPublisher", "LocalPublisher", "Publisher"]

"""Training data from the feature store: its content id and where the materialised Parquet is cached.

The content id of a model's training (or evaluation) set read from the store is a function of what
produces it: the version of the feature service (its views' definitions and the hashes of their
source files, :func:`mlops_ci.features.diff.service_version`) and the entity table's own content id
(DVC md5 or git blob). Same id, same rows: the profiles of the data checks and the materialised
files are cached by it, and the training fingerprint counts it as the data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

SCHEME = "mlops-ci/features/v1"
PREFIX = "feat:"


def content_id(service: str, service_version: str, entities_id: str) -> str:
    digest = hashlib.sha256(f"{SCHEME}\0{service}\0{service_version}\0{entities_id}".encode()).hexdigest()
    return PREFIX + digest[:40]


def is_feature_id(value: str | None) -> bool:
    return bool(value) and value.startswith(PREFIX)


def cached_file(cache_dir: Path, cid: str) -> Path:
    """Where the materialised Parquet for content id ``cid`` is kept."""
    return cache_dir / "features" / f"{cid.removeprefix(PREFIX)}.parquet"


__all__ = ["PREFIX", "SCHEME", "cached_file", "content_id", "is_feature_id"]

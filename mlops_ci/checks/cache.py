"""Profiles cached by content hash: a pull request only profiles its own side.

The key is the file's DVC md5, the profile options and, for a side profiled against a
reference, a digest of the reference's histogram edges. A cache entry that cannot be read is
ignored and rewritten, never trusted half-way.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from mlops_ci.checks.profile import PROFILE_VERSION, TableProfile
from mlops_ci.checks.profiler import ProfileOptions


def cache_key(md5: str, options: ProfileOptions, reference: TableProfile | None = None) -> str:
    parts = [f"v{PROFILE_VERSION}", md5.replace(":", "-"), options.key()]
    if reference is not None:
        edges = {name: col.edges for name, col in reference.columns.items() if col.edges is not None}
        parts.append(hashlib.sha256(json.dumps(edges, sort_keys=True).encode()).hexdigest()[:16])
    return "-".join(parts)


class ProfileCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> TableProfile | None:
        path = self._path(key)
        try:
            profile = TableProfile.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return profile if profile.version == PROFILE_VERSION else None

    def put(self, key: str, profile: TableProfile) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".profile-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(profile.to_json(), fh, separators=(",", ":"))
            os.replace(tmp, self._path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

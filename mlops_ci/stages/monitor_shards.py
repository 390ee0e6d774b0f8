"""Monitoring fanned out (the Argo CronWorkflow's `shards > 1` path): the windows' log objects
split into shards, each shard profiled in its own pod, the profiles merged and graded.

The objects are listed the same way in every pod (modified in the windows' span, up to
``--until``, which the workflow fixes at its creation time), so each pod finds its own shard
without passing file lists between them. Profiles merge exactly (mlops_ci.monitor.stream_merge):
the merged windows are graded as one process would grade them.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlops_ci.errors import InputError, UsageError
from mlops_ci.records.monitor import MonitorRecord, TrafficCounts
from mlops_ci.stages.monitor import Served

MAX_PROFILE_BYTES = 256 << 20


def _paths(s: Served) -> list[str]:
    from mlops_ci.monitor.logs import list_objects

    return list_objects(s.location, since=s.since, until=s.until)


def _labels_refused(s: Served) -> None:
    if s.settings.labels is not None:
        raise UsageError("monitoring.labels joins labels row by row, which the fan-out does not do",
                         hint="run `mlops-ci monitor` in one process (shards: 1) for a model with labels")


def shard_ids(s: Served, shards: int) -> list[int]:
    """The shards that hold objects (at most ``shards``), as the workflow's list to fan out over."""
    from mlops_ci.monitor.stream_merge import shard_objects

    _labels_refused(s)
    if not 1 <= shards <= 64:
        raise UsageError(f"--shards {shards}: write 1 to 64")
    parts = shard_objects(_paths(s), shards)
    return [i for i, part in enumerate(parts) if part] or [0]


def profile_shard(s: Served, shard: int, of: int) -> dict:
    """Shard ``shard`` of ``of``: its windows' profiles, as JSON."""
    from mlops_ci.monitor.stream import profile_objects
    from mlops_ci.monitor.stream_merge import shard_objects

    _labels_refused(s)
    if not 0 <= shard < of:
        raise UsageError(f"--shard {shard} --of {of}: the shard is 0 to {of - 1}")
    paths = shard_objects(_paths(s), of)[shard]
    return {"shard": shard, "of": of, "until": s.until.isoformat(), "version": s.version,
            "profiles": profile_objects(paths, s.reference, s.windows()).to_json()}


def merged_record(s: Served, folder: Path) -> MonitorRecord:
    """The shards' profiles under ``folder`` merged and graded: the record one process gives."""
    from mlops_ci.monitor.stream import WindowProfiles
    from mlops_ci.monitor.stream_merge import analyse, merge, traffic_counts

    _labels_refused(s)
    docs = []
    for path in sorted(Path(folder).rglob("*.json")):
        if path.stat().st_size > MAX_PROFILE_BYTES:
            raise InputError(f"{path}: over {MAX_PROFILE_BYTES} bytes for one shard's profiles")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            docs.append((doc, WindowProfiles.from_json(doc["profiles"])))
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"{path}: not a shard's profiles ({str(err)[:200]})") from None
    if not docs:
        raise InputError(f"no shard profiles (*.json) under {folder}")
    of = {d["of"] for d, _ in docs}
    seen = sorted(d["shard"] for d, _ in docs)
    if len(of) != 1 or {d["until"] for d, _ in docs} != {s.until.isoformat()} or \
            {d["version"] for d, _ in docs} != {s.version}:
        raise InputError("the shard profiles are from different runs (--of, --until or the served version differ)")
    if seen != sorted(set(seen)):
        raise InputError(f"shard profiles given twice: {seen}")
    profiles = merge([p for _, p in docs])
    results = analyse(s.reference, profiles, s.settings)
    counts = TrafficCounts(**{**traffic_counts(profiles), "requests": sum(profiles.requests)})
    return s.record(results, counts, list(profiles.corrupt), list(profiles.problems))


__all__ = ["merged_record", "profile_shard", "shard_ids"]

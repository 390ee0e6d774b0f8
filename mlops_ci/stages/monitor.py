"""`mlops-ci monitor`'s analysis: the version an environment serves, its reference, and its
traffic from KServe's payload logs, window by window.

The served version is what the GitOps repository pins (the workload manifest's annotations), not
what a registry alias says. Its reference is the artifact stored at registration; a version
registered before references were kept gets one computed now from the data revisions in its
lineage (the ``mlops_ci.data.*`` tags), stored with its run so it is computed once.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from datetime import datetime

from mlops_ci import registry
from mlops_ci.backends.gitops import GitOpsRemote
from mlops_ci.backends.tracking import Tracking
from mlops_ci.config.monitoring import MonitoringConfig
from mlops_ci.errors import NotFound, UsageError
from mlops_ci.records import DataVersion, ModelPlan
from mlops_ci.records.monitor import (
    INSUFFICIENT,
    LiveMetric,
    MonitorRecord,
    SkippedObject,
    TrafficCounts,
    WindowResult,
    worst_window,
)
from mlops_ci.stages.declared import served_version
from mlops_ci.stages.reference import REFERENCE_FILE, build_reference, load_reference
from mlops_ci.workspace import Workspace


def logs_location(ws: Workspace, model: str, env: str, override: str | None = None) -> str:
    """Where the model's objects are in ``env``: ``<logs>/<namespace>/<model>`` (KServe's layout)."""
    cfg = ws.model(model)
    logs = override or cfg.monitoring.logs
    logging = getattr(cfg.serving, "logging", None)
    if logs is None and logging is not None and logging.storage is not None:
        logs = logging.url
    if not logs:
        raise UsageError(f"{model}: no payload logs to read",
                         hint="set monitoring.logs (or serving.logging with storage), or pass --logs URL")
    if "://" not in logs:
        logs = str((ws.root / logs).resolve())
    return posixpath.join(logs.rstrip("/"), ws.config.environments[ws.environment(env)].namespace, model)


def reference_of(ws: Workspace, model: str, version: str, *, tracking: Tracking,
                 store: bool = True) -> tuple[dict, str]:
    """The version's stored reference, or one computed from its lineage's data (then stored,
    unless ``store`` is False)."""
    info = tracking.get_version(model, version)
    doc = load_reference(tracking, info.run_id) if info.run_id else None
    if doc is not None:
        return doc, "stored"
    if not info.run_id:
        raise NotFound(f"{model} version {version} has no run to keep a reference with")
    cfg = ws.model(model)
    data = []
    for role, rel in (("train", cfg.data.train), ("eval", cfg.data.eval)):
        content = info.tags.get(registry.DATA_PREFIX + role)
        if not content:
            raise NotFound(f"{model} version {version} has no reference and no {role} data revision in its "
                           "lineage to compute one from", hint="register a new version (it stores its reference)")
        data.append(DataVersion(role=role, path=ws.repo_path(rel), head_md5=content))
    revision = info.tags.get(registry.HEAD_SHA) or info.tags.get(registry.GIT_COMMIT)
    if not revision:
        raise NotFound(f"{model} version {version} has no reference and no commit in its lineage to read its "
                       "data at", hint="register a new version (it stores its reference)")
    plan = ModelPlan(model=model, stages=[], data=data)
    from mlops_ci.data.fetch import revision_file
    from mlops_ci.stages.evaluate import load_eval_data

    # the data as the version was trained and evaluated on, never the work tree's
    source = lambda t: revision_file(ws.top, revision, t, ws.cache_dir / "data")
    frame, _, _ = load_eval_data(ws, plan, source=source)
    doc = build_reference(ws, plan, tracking.predict(info.artifact_uri, frame), source=source)
    import json

    if store:
        tracking.log_text(info.run_id, json.dumps(doc, separators=(",", ":")), REFERENCE_FILE)
        tracking.set_version_tags(model, version, {registry.REFERENCE: REFERENCE_FILE})
    return doc, "computed"


def live_metrics(ws: Workspace, model: str, rows) -> tuple[int, list[LiveMetric]]:
    """The evaluation's metrics over the window's rows that have a label, graded by its gates'
    absolute bounds (min, max)."""
    import numpy as np

    from mlops_ci.monitor.labels import LABEL
    from mlops_ci.monitor.traffic import PREDICTION
    from mlops_ci.stages.evaluate import compute_metrics, positive

    if LABEL not in rows:
        return 0, []
    known = rows[rows[LABEL].notna() & rows[PREDICTION].notna()]
    if not len(known):
        return 0, []
    ev = ws.model(model).evaluation
    y = known[LABEL]
    if ev.task == "binary_classification":
        y = positive(y)
    values = compute_metrics(ev, np.asarray(y, dtype=float), known[PREDICTION].to_numpy(dtype=float))
    out = []
    for name, value in values.items():
        gate = ev.gates.get(name)
        low, high = (gate.min, gate.max) if gate else (None, None)
        bad = math.isnan(value) or (low is not None and value < low) or (high is not None and value > high)
        out.append(LiveMetric(name=name, value=value, gate_min=low, gate_max=high,
                              status="fail" if bad and (low is not None or high is not None) else "pass"))
    return len(known), out


@dataclass(frozen=True)
class Served:
    """What a monitoring run grades: the served version, its reference, the settings, where the
    logs are and the span of the windows."""

    model: str
    env: str
    version: str
    run_id: str
    reference: dict
    how: str  # stored | computed
    settings: MonitoringConfig
    location: str
    since: datetime
    until: datetime

    def windows(self) -> list[tuple[datetime, datetime]]:
        from mlops_ci.monitor.stream import windows_ending

        return windows_ending(self.until, self.settings.width(), self.settings.windows)

    def record(self, results: list[WindowResult], counts: TrafficCounts, corrupt, problems: list[str]) -> MonitorRecord:
        if not counts.objects:
            problems = [(f"no log objects under {self.location} (KServe's layout: <logs>/<namespace>/<model>/...): "
                         "check monitoring.logs and that the logger writes there"), *problems]
        return MonitorRecord(model=self.model, env=self.env, version=self.version, run_id=self.run_id,
                             reference=self.how, logs=self.location, window=self.settings.window,
                             until=self.until.isoformat(timespec="seconds"),
                             status=worst_window(r.status for r in results), windows=results, traffic=counts,
                             skipped=[SkippedObject(path=c.path[-1000:], reason=c.reason[:2000])
                                      for c in corrupt[:50]], problems=problems[:5])


def served(ws: Workspace, model: str, env: str, *, until: datetime, tracking: Tracking, gitops: GitOpsRemote,
           window: str | None = None, windows: int | None = None, logs: str | None = None, progress=None,
           store: bool = True) -> Served:
    """The version ``env`` serves (from the GitOps repository), its reference and the settings."""
    cfg = ws.model(model)
    updates = {k: v for k, v in (("window", window), ("windows", windows)) if v is not None}
    # what the checks leave out (identifiers, dates) is left out of monitoring too
    updates["ignore_columns"] = list(dict.fromkeys([*cfg.checks.ignore_columns, *cfg.monitoring.ignore_columns]))
    settings = cfg.monitoring.model_validate({**cfg.monitoring.model_dump(by_alias=True), **updates})
    location = logs_location(ws, model, env, logs)
    with gitops.checkout() as co:
        version = served_version(ws, co, env, model)
    if version is None:
        raise NotFound(f"the GitOps repository serves no version of {model} in {env}",
                       hint="promote one first (mlops-ci promote)")
    info = tracking.get_version(model, version)
    (progress or (lambda text: None))(f"{model} v{version} serves {env}: reading its reference")
    reference, how = reference_of(ws, model, version, tracking=tracking, store=store)
    return Served(model, env, version, info.run_id or "", reference, how, settings, location,
                  until - settings.windows * settings.width(), until)


def analyse_traffic(ws: Workspace, model: str, env: str, *, until: datetime, tracking: Tracking,
                    gitops: GitOpsRemote, window: str | None = None, windows: int | None = None,
                    logs: str | None = None, progress=None, store: bool = True) -> MonitorRecord:
    """The monitor record of ``model`` in ``env`` for the windows ending at ``until``."""
    s = served(ws, model, env, until=until, tracking=tracking, gitops=gitops, window=window, windows=windows,
               logs=logs, progress=progress, store=store)
    say = progress or (lambda text: None)
    say(f"reading payload logs under {s.location}")
    location = s.location
    if s.settings.labels is None:  # the bounded-memory path: profiles merged object by object
        results, counts, corrupt, problems = _streamed(s.reference, location, s.settings, until=until, since=s.since)
    else:  # labels are joined row by row: the traffic of the windows is held as one frame
        results, counts, corrupt, problems = _framed(ws, model, s.reference, location, s.settings, until=until,
                                                     since=s.since)
    for result in results:
        say(f"window {result.start} .. {result.end}: {result.rows} rows, {result.status}")
    return s.record(results, counts, corrupt, problems)


def _streamed(reference: dict, location: str, settings, *, until: datetime, since: datetime):
    """Each window's profiles built object by object (mlops_ci.monitor.stream): memory bounded by
    the profiles, not the traffic."""
    from mlops_ci.monitor import stream, stream_merge

    paths = stream.list_objects(location, since=since)
    profiles = stream.profile_objects(paths, reference, stream.windows_ending(until, settings.width(),
                                                                               settings.windows))
    results = stream_merge.analyse(reference, profiles, settings)
    counts = TrafficCounts(**{**stream_merge.traffic_counts(profiles), "requests": sum(profiles.requests)})
    return results, counts, list(profiles.corrupt), list(profiles.problems)


def _framed(ws: Workspace, model: str, reference: dict, location: str, settings, *, until: datetime,
            since: datetime):
    """The windows' traffic as one frame, labels joined, live metrics per window."""
    from mlops_ci.monitor.logs import read_objects
    from mlops_ci.monitor.traffic import ID, TIME, pair
    from mlops_ci.monitor.windows import analyse, split

    problems: list[str] = []
    objects = list(read_objects(location, since=since))
    traffic = pair(objects)
    frame = traffic.frame
    if len(frame):
        joined = join_labels(ws, model, frame, settings.labels)
        frame = joined.frame
        if joined.mismatched:
            problems.append(f"{joined.mismatched} request(s) have a different number of labels than rows: left "
                            "unlabelled (a label is never paired with a row by guess)")
    results: list[WindowResult] = []
    for start, end, rows in split(frame, until=until, width=settings.width(), count=settings.windows):
        result = analyse(reference, start, end, rows, settings)
        count, metrics = live_metrics(ws, model, rows)
        if metrics:
            failed = any(m.status == "fail" for m in metrics) and result.status != INSUFFICIENT
            result = result.model_copy(update={"labelled": count, "metrics": metrics,
                                               **({"status": "fail"} if failed else {})})
        results.append(result)
    in_range = frame[(frame[TIME] >= since) & (frame[TIME] < until)] if len(frame) else frame
    counts = TrafficCounts(objects=len(objects), corrupt=len(traffic.corrupt),
                           requests=int(in_range[ID].nunique()) if len(in_range) else 0,
                           unanswered=traffic.unanswered, orphans=traffic.orphans, undecodable=traffic.undecodable)
    return results, counts, traffic.corrupt, [*problems, *traffic.problems]


def join_labels(ws: Workspace, model: str, frame, labels):
    """``frame`` (paired traffic) with the ground truth ``labels`` (monitoring.labels) says where,
    joined by request id; the join's result (its ``frame``, how many ``mismatched``)."""
    from mlops_ci.monitor import labels as labelled

    source = labels.path if "://" in labels.path else str(ws.root / labels.path)
    label = labels.label or ws.model(model).data.label
    table = labelled.read_labels(source, key=labels.id_column, label=label)
    return labelled.join(frame, table, key=labels.id_column, on=labels.key, label=label)


def metric_failed(record: MonitorRecord) -> list[str]:
    """The live metrics of the latest window with labels that are outside their gates."""
    for w in reversed(record.windows):
        if w.metrics:
            return [m.name for m in w.metrics if m.status == "fail"]
    return []


__all__ = ["analyse_traffic", "join_labels", "live_metrics", "logs_location", "metric_failed", "reference_of"]

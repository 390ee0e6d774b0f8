"""The Feast worker's reads of the definitions and the data: describe, historical and skew.

Part of the worker that ``mlops_ci_feast_worker.py`` runs inside the Feast environment (see its
docstring): the standard library at import time, Feast, pandas and pyarrow inside the functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from mlops_ci_feast_common import UserError, inside, paragraph, phase, timestamp
from mlops_ci_feast_stores import (
    apply_definitions,
    existing_store,
    make_config,
    open_repo,
    parse,
    scratch_store,
)

ROW = "__mlops_ci_row__"  # carried through get_historical_features, which reorders rows
MAX_MISMATCHES = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- values ------------------------------------------------------------------------------------

def json_value(value: object) -> object:
    """A value from Feast (online: Python; offline: numpy/pandas) as JSON: nulls None, times UTC ISO."""
    import numpy as np
    import pandas as pd

    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if value is None or (not isinstance(value, (str, bytes)) and pd.isna(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def same(a: object, b: object, tolerance: float) -> bool:
    """Nulls equal nulls; numbers within ``tolerance`` (relative and absolute); lists item by item."""
    if a is None or b is None:
        return a is None and b is None
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if numbers:
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, tolerance) for x, y in zip(a, b))
    return a == b


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_hash(path: Path) -> str | None:
    """A file's sha256; a folder's (a partitioned dataset): of its files' relative paths and hashes."""
    if path.is_file():
        return _sha256(path)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path).as_posix()}\0{_sha256(item)}\n".encode())
    return digest.hexdigest()


# --- describe ----------------------------------------------------------------------------------

def _source(source, repo: Path) -> tuple[dict | None, Path | None]:
    if source is None:
        return None, None
    written = getattr(source, "path", None) or None
    shown, local = written, None
    if written and ("://" not in written or written.startswith("file://")):  # a local file (or folder)
        local = Path(written.removeprefix("file://"))
        local = local if local.is_absolute() else repo / local
        rel = inside(str(local), repo)
        shown = rel if rel is not None else written
    return {"name": source.name, "path": shown, "timestamp_field": source.timestamp_field or None}, local


def _service_views(service) -> dict[str, list[str]]:
    views: dict[str, list[str]] = {}
    for projection in service.feature_view_projections:
        fields = views.setdefault(projection.name, [])
        fields += [f.name for f in projection.features if f.name not in fields]
    for ref in getattr(service, "_pending_feature_refs", []):  # "view:feature" strings, resolved at apply
        view, _, feature = ref.partition(":")
        fields = views.setdefault(view.split("@")[0], [])
        if feature and feature not in fields:
            fields.append(feature)
    return views


def describe(repo: Path, project: str, contents) -> dict:
    from feast.feature_view import DUMMY_ENTITY_NAME
    from feast.on_demand_feature_view import OnDemandFeatureView
    from feast.stream_feature_view import StreamFeatureView

    entities = {e.name: {"join_keys": [e.join_key], "value_type": e.value_type.name}
                for e in sorted(contents.entities, key=lambda e: e.name) if e.name != DUMMY_ENTITY_NAME}
    views, files = {}, {}
    all_views = [*contents.feature_views, *contents.stream_feature_views, *contents.on_demand_feature_views]
    for view in sorted(all_views, key=lambda v: v.name):
        on_demand = isinstance(view, OnDemandFeatureView)
        source, local = _source(None if on_demand else view.batch_source, repo)
        if local is not None and source["path"] not in files:
            digest = source_hash(local)
            if digest:
                files[source["path"]] = digest
        ttl = getattr(view, "ttl", None)
        views[view.name] = {
            "kind": "on_demand" if on_demand else "stream" if isinstance(view, StreamFeatureView) else "batch",
            "entities": [] if on_demand else list(view.entities),
            "fields": {f.name: str(f.dtype) for f in view.features},
            "ttl_s": ttl.total_seconds() if ttl and ttl.total_seconds() > 0 else None,
            "online": bool(getattr(view, "online", True)),
            "source": source,
        }
    services = {s.name: {"views": _service_views(s)} for s in sorted(contents.feature_services, key=lambda s: s.name)}
    return {"project": project, "entities": entities, "views": views, "services": services,
            "source_files": dict(sorted(files.items()))}


# --- retrieval ---------------------------------------------------------------------------------

def get_service(store, name: str):
    from feast.errors import FeatureServiceNotFoundException

    try:
        return store.get_feature_service(name)
    except FeatureServiceNotFoundException:
        known = ", ".join(sorted(s.name for s in store.list_feature_services())) or "none"
        raise UserError("not_found", f"feature service {name!r} is not defined in project {store.project} "
                        f"(its feature services: {known})") from None


def join_keys(store, service) -> list[str]:
    """The entity columns the service's views join on (with the service's join key maps)."""
    from feast.errors import FeatureViewNotFoundException

    keys: list[str] = []
    for projection in service.feature_view_projections:
        try:
            view = store.get_feature_view(projection.name)
        except FeatureViewNotFoundException:  # on demand: its inputs' keys are listed by them
            continue
        for field in view.entity_columns:
            key = projection.join_key_map.get(field.name, field.name)
            if key not in keys:
                keys.append(key)
    return keys


def read_entities(path: str, keys: list[str], service: str):
    """An entity table: the join keys, event_timestamp (made UTC: Feast reads naive times as UTC)."""
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # OSError, pyarrow's ArrowInvalid...
        raise UserError("data", f"cannot read the entity table {path}: "
                        f"{type(err).__name__}: {paragraph(err)}") from err
    missing = [c for c in [*keys, "event_timestamp"] if c not in frame.columns]
    if missing:
        raise UserError("data", f"the entity table {path} has no column {', '.join(missing)}: feature service "
                        f"{service} joins on {', '.join(keys) or 'no key'} at event_timestamp; its columns: "
                        f"{', '.join(map(str, frame.columns[:30]))}")
    try:
        ts = pd.to_datetime(frame["event_timestamp"], utc=True)
    except (TypeError, ValueError) as err:
        raise UserError("data", f"the entity table {path}: event_timestamp is not a time column "
                        f"({frame['event_timestamp'].dtype}): {paragraph(err)}") from err
    if ts.isna().any():
        raise UserError("data", f"the entity table {path}: {int(ts.isna().sum())} rows have no event_timestamp")
    frame["event_timestamp"] = ts
    return frame.drop(columns=[ROW], errors="ignore").reset_index(drop=True)


def historical_frame(store, service, entities, repo: Path, *, full_names: bool, what: str):
    """get_historical_features of ``entities``, in their row order."""
    frame = entities.assign(**{ROW: range(len(entities))})
    with phase("data", what, repo):
        out = store.get_historical_features(entity_df=frame, features=service,
                                            full_feature_names=full_names).to_df()
    if len(out) != len(frame):  # the file offline store drops a row with no value in a view's ttl
        lost = sorted(set(range(len(frame))) - set(out[ROW]))[:5] if ROW in out else []
        ttls = []
        for projection in getattr(service, "feature_view_projections", []):
            with contextlib.suppress(Exception):
                ttl = store.get_feature_view(projection.name).ttl
                ttls.append(f"{projection.name} {ttl}" if ttl else f"{projection.name} (no ttl)")
        raise UserError("data", f"get_historical_features returned {len(out)} of {len(frame)} entity rows: Feast's "
                        "file offline store drops an entity row that has no value of a view within that view's ttl "
                        f"({', '.join(ttls) or 'ttl unknown'}); rows {lost} (0-based) among them. Widen the ttl, or "
                        "keep only entity rows whose event_timestamp has feature values that recent")
    out = out.sort_values(ROW, kind="stable").drop(columns=[ROW]).reset_index(drop=True)
    first = list(entities.columns)
    return out[first + [c for c in out.columns if c not in first]]


def write_parquet(frame, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    partial = f"{path}.partial"
    frame.to_parquet(partial, index=False)
    os.replace(partial, path)


# --- the operations ----------------------------------------------------------------------------

def op_describe(req: dict) -> dict:
    repo, raw = open_repo(req)
    config = make_config(raw, repo)
    return describe(repo, config.project, parse(repo, config))


def op_historical(req: dict) -> dict:
    repo, raw = open_repo(req)
    with tempfile.TemporaryDirectory(prefix="mlops-ci-feast-historical-") as tmp:
        if req.get("registry"):
            store = existing_store(raw, repo)
        else:  # the definitions applied to a throwaway registry (nothing materialised)
            store = scratch_store(raw, repo, Path(tmp))
            apply_definitions(store, parse(repo, store.config), repo, infra=False)
        service = get_service(store, req["service"])
        keys = join_keys(store, service)
        done = []
        for job in req["jobs"]:
            entities = read_entities(job["entities"], keys, service.name)
            out = historical_frame(store, service, entities, repo, full_names=False,
                                   what=f"get_historical_features of {service.name} for {job['entities']} failed")
            write_parquet(out, job["out"])
            done.append({"out": job["out"], "rows": len(out), "columns": [str(c) for c in out.columns]})
    return {"jobs": done}


def _materialize_scratch(store, service, at: datetime, repo: Path) -> None:
    """Each online view of ``service`` loaded as of ``at``: the rows within its TTL (all without one)."""
    from feast.errors import FeatureViewNotFoundException

    with phase("data", "materialization into the scratch online store failed", repo):
        for projection in service.feature_view_projections:
            try:
                view = store.get_feature_view(projection.name)
            except FeatureViewNotFoundException:
                continue
            if view.online:
                ttl = view.ttl if view.ttl and view.ttl.total_seconds() > 0 else None
                store.materialize(start_date=at - ttl if ttl else EPOCH, end_date=at, feature_views=[view.name])


def _skew_store(req: dict, repo: Path, raw: dict):
    """The environment's stores; with ``scratch``, the definitions applied to a registry and store there."""
    if not req.get("scratch"):
        return existing_store(raw, repo)
    scratch = Path(req["scratch"])
    scratch.mkdir(parents=True, exist_ok=True)
    store = scratch_store(raw, repo, scratch)
    apply_definitions(store, parse(repo, store.config), repo)
    return store


def op_skew(req: dict) -> dict:
    repo, raw = open_repo(req)
    store = _skew_store(req, repo, raw)
    service = get_service(store, req["service"])
    keys = join_keys(store, service)
    entities = read_entities(req["entities"], keys, service.name)
    if req.get("at"):
        at = timestamp(req["at"], "at")
    elif req.get("scratch") and len(entities):
        at = entities["event_timestamp"].max().to_pydatetime()
    else:
        at = datetime.now(UTC)
    if req.get("scratch"):
        _materialize_scratch(store, service, at, repo)
    distinct = entities[keys].drop_duplicates().sort_values(keys, kind="stable").reset_index(drop=True)
    picked = sorted(random.Random(req["seed"]).sample(range(len(distinct)), min(req["sample"], len(distinct))))
    rows = distinct.iloc[picked].reset_index(drop=True)
    refs = [(f"{p.name_to_use()}:{f.name}", f"{p.name_to_use()}__{f.name}")
            for p in service.feature_view_projections for f in p.features]
    entity_rows = [{k: json_value(rows.at[i, k]) for k in keys} for i in range(len(rows))]
    mismatches, count = [], 0
    if entity_rows:
        offline = historical_frame(store, service, rows.assign(event_timestamp=at), repo, full_names=True,
                                   what=f"reading {service.name} from the offline store failed")
        with phase("data", f"reading {service.name} from the online store failed", repo):
            online = store.get_online_features(features=service, entity_rows=entity_rows,
                                               full_feature_names=True).to_dict()
        for i, entity in enumerate(entity_rows):
            for ref, column in refs:
                on, off = json_value(online[column][i]), json_value(offline.at[i, column])
                if not same(on, off, float(req["tolerance"])):
                    count += 1
                    if len(mismatches) < MAX_MISMATCHES:
                        mismatches.append({"entity": entity, "feature": ref, "online": on, "offline": off})
    return {"checked": len(rows), "at": at.isoformat(), "features": [ref for ref, _ in refs],
            "mismatches": mismatches, "mismatch_count": count}

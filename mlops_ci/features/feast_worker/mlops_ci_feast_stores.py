"""The Feast worker's configuration and registries: feature_store.yaml with its overrides, the
definitions parsed, registries read without writing, scratch and existing stores, `feast apply`,
and the plan and apply operations.

Part of the worker that ``mlops_ci_feast_worker.py`` runs inside the Feast environment (see its
docstring): the standard library at import time, Feast, pandas and pyarrow inside the functions.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from mlops_ci_feast_common import MAX_TEXT, UserError, paragraph, phase, plain, timestamp

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --- the configuration ---------------------------------------------------------------------------

def _override_registry(old: object, new: str) -> object:
    new = new.removeprefix("file://")  # Feast's file store takes paths
    return {**old, "path": new} if isinstance(old, dict) else new


def _override_online(old: object, path: str) -> dict:
    kind = old.get("type", "sqlite") if isinstance(old, dict) else old
    if kind not in (None, "sqlite"):
        raise UserError("config", f"feature_store.yaml: the online store is {kind!r}; an online store path "
                        "replaces a sqlite store's only", file="feature_store.yaml")
    return {**(old if isinstance(old, dict) else {}), "type": "sqlite", "path": path}


def load_raw(repo: Path, registry: str | None, online_store: str | None) -> dict:
    """feature_store.yaml as Feast reads it (environment variables expanded), with the overrides."""
    import yaml

    path = repo / "feature_store.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UserError("config", f"cannot read {path}: {err.strerror or err}; a Feast feature repository "
                        "holds feature_store.yaml beside its definitions", file="feature_store.yaml") from err
    try:
        raw = yaml.safe_load(os.path.expandvars(text))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise UserError("config", f"feature_store.yaml{f':{line}' if line else ''}: not valid YAML: "
                        f"{paragraph(getattr(err, 'problem', None) or err)}", file="feature_store.yaml",
                        line=line) from err
    if not isinstance(raw, dict):
        raise UserError("config", "feature_store.yaml: expected a mapping (project, provider, registry, ...)",
                        file="feature_store.yaml")
    if registry:
        raw["registry"] = _override_registry(raw.get("registry"), registry)
    if online_store:
        raw["online_store"] = _override_online(raw.get("online_store"), online_store)
    return raw


def make_config(raw: dict, repo: Path):
    from feast.repo_config import RepoConfig

    try:
        config = RepoConfig(**raw)
        config.registry  # noqa: B018 - validates the registry section now, not at first use
    except Exception as err:
        traceback.print_exc()
        raise UserError("config", f"feature_store.yaml: {type(err).__name__}: {paragraph(err)}",
                        file="feature_store.yaml") from err
    config.repo_path = repo
    return config


def parse(repo: Path, config):
    """The repository's Feast objects (its .py files imported, as `feast apply` does: cwd = repo)."""
    from feast.project import Project
    from feast.repo_operations import parse_repo

    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    with phase("definitions", "cannot import the feature definitions", repo):
        contents = parse_repo(repo)
    names = [p.name for p in contents.projects]
    if len(names) > 1:
        raise UserError("definitions", f"the definitions define {len(names)} Project objects ({', '.join(names)}); "
                        "Feast supports one per repository")
    if names and names[0] != config.project:
        raise UserError("definitions", f"the definitions' Project is {names[0]!r} but feature_store.yaml's project "
                        f"is {config.project!r}; Feast needs them to match")
    if not names:
        contents.projects.append(Project(name=config.project, description=config.project_description or ""))
    return contents


# --- the registry ------------------------------------------------------------------------------

def read_registry(config):
    """The registry's content, read through its store without writing (None: it does not exist yet)."""
    from feast.infra.registry.registry import (
        get_registry_store_class_from_scheme,
        get_registry_store_class_from_type,
    )

    rc = config.registry
    if rc.registry_type != "file":
        raise UserError("config", f"feature_store.yaml: a {rc.registry_type} registry cannot be read without "
                        "writing to it; plans are made against file registries (a path, s3://, gs://, az://)",
                        file="feature_store.yaml")
    with phase("registry", f"cannot read the registry {rc.path}", None):
        cls = (get_registry_store_class_from_type(str(rc.registry_store_type)) if rc.registry_store_type
               else get_registry_store_class_from_scheme(rc.path))
        try:
            return cls(rc, config.repo_path).get_registry_proto()
        except FileNotFoundError:
            return None


def existing_store(raw: dict, repo: Path):
    """A FeatureStore on the configured registry, which must exist (Feast would create an empty one)."""
    from feast import FeatureStore

    config = make_config(raw, repo)
    if config.registry.registry_type == "file" and read_registry(config) is None:
        path = config.registry.path
        shown = path if "://" in path or Path(path).is_absolute() else repo / path
        raise UserError("registry", f"the registry {shown} does not exist yet: apply the definitions to it "
                        "first (feast apply)")
    return FeatureStore(config=config)


def scratch_store(raw: dict, repo: Path, folder: Path, *, proto=None, online: bool = True):
    """A FeatureStore whose registry (a copy of ``proto``, else empty) and SQLite online store
    (``online``; else the configured one) are files in ``folder``."""
    from feast import FeatureStore

    registry = folder / "registry.db"
    if proto is not None:
        registry.write_bytes(proto.SerializeToString())
    raw = {**raw, "registry": {"registry_type": "file", "path": str(registry), "cache_ttl_seconds": 0}}
    if online:
        raw["online_store"] = _override_online(raw.get("online_store"), str(folder / "online.db"))
    return FeatureStore(config=make_config(raw, repo))


@contextlib.contextmanager
def sqlite_in_memory():
    """Feast's plan opens each SQLite table it plans (creating the file and its folder): here, in memory."""
    import sqlite3

    from feast.infra.online_stores import sqlite as feast_sqlite

    original = feast_sqlite._initialize_conn
    feast_sqlite._initialize_conn = lambda *args, **kwargs: sqlite3.connect(":memory:", check_same_thread=False)
    try:
        yield
    finally:
        feast_sqlite._initialize_conn = original


def _validate_sources(store, contents) -> None:
    provider = store._get_provider()
    for view in contents.feature_views:
        if view.batch_source is not None:
            provider.validate_data_source(store.config, view.batch_source)


def apply_definitions(store, contents, repo: Path, *, infra: bool = True):
    """`feast apply` of ``contents`` (``infra=False``: the registry only); the registry diff."""
    from feast.diff.registry_diff import apply_diff_to_registry
    from feast.repo_operations import extract_objects_for_apply_delete

    with phase("definitions", "feast apply failed", repo):
        _validate_sources(store, contents)
        if infra and not store._should_use_plan():  # Feast's legacy path (not local + sqlite)
            to_apply, to_delete, _, _ = extract_objects_for_apply_delete(store.project, store.registry, contents)
            registry_diff, _, _ = store.plan(contents)
            store.apply(to_apply, objects_to_delete=to_delete, partial=False)
            return registry_diff
        registry_diff, infra_diff, new_infra = store.plan(contents)
        if infra:  # what `feast apply` does on the local provider
            store._apply_diffs(registry_diff, infra_diff, new_infra)
        else:
            apply_diff_to_registry(store.registry, registry_diff, store.project, commit=True)
    return registry_diff


def objects(registry_diff, *, changes: bool) -> list[dict]:
    from feast.feature_view import DUMMY_ENTITY_NAME

    out = []
    for diff in registry_diff.feast_object_diffs:
        if diff.name == DUMMY_ENTITY_NAME:
            continue
        item = {"type": diff.feast_object_type.value, "name": diff.name, "transition": diff.transition_type.name}
        if changes:
            item["changes"] = [{"property": p.property_name, "before": _text(p.val_existing),
                                "after": _text(p.val_declared)} for p in diff.feast_object_property_diffs]
        out.append(item)
    return out


def _text(value: object) -> str:
    from google.protobuf import text_format
    from google.protobuf.message import Message

    if isinstance(value, Message):
        text = text_format.MessageToString(value, as_one_line=True)
    elif hasattr(value, "items"):  # a map field
        text = "{" + ", ".join(f"{k}: {_text(v)}" for k, v in sorted(value.items())) + "}"
    elif hasattr(value, "__len__") and not isinstance(value, (str, bytes)):  # a repeated field
        text = "[" + ", ".join(_text(item) for item in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


# --- the operations ----------------------------------------------------------------------------

def open_repo(req: dict) -> tuple[Path, dict]:
    """The request's repository (made the working directory) and its configuration, overridden."""
    repo = Path(req["repo"]).resolve()
    if not repo.is_dir():
        raise UserError("config", f"{repo} is not a folder: the feature repository holds feature_store.yaml "
                        "and the definitions")
    os.chdir(repo)  # as `feast` runs: relative paths in the definitions are the repository's
    return repo, load_raw(repo, req.get("registry"), req.get("online_store"))


def op_plan(req: dict) -> dict:
    repo, raw = open_repo(req)
    config = make_config(raw, repo)
    contents = parse(repo, config)
    proto = read_registry(config)
    with tempfile.TemporaryDirectory(prefix="mlops-ci-feast-plan-") as tmp:
        # a copy of the registry (Feast writes an empty one where there is none), SQLite in memory
        store = scratch_store(raw, repo, Path(tmp), proto=proto, online=False)
        with sqlite_in_memory(), phase("definitions", "feast plan failed", repo):
            _validate_sources(store, contents)
            registry_diff, infra_diff, _ = store.plan(contents)
        return {"registry_diff": plain(registry_diff.to_string()), "infra_diff": plain(infra_diff.to_string()),
                "objects": objects(registry_diff, changes=True)}


def op_apply(req: dict) -> dict:
    from feast import FeatureStore

    repo, raw = open_repo(req)
    config = make_config(raw, repo)
    contents = parse(repo, config)
    store = FeatureStore(config=config)
    before = _schemas(store)
    registry_diff = apply_definitions(store, contents, repo)
    materialized: list[str] = []
    refreshed: list[str] = []
    spec = req.get("materialize")
    if spec:
        end = timestamp(spec.get("end"), "materialize.end")
        start = timestamp(spec["start"], "materialize.start") if spec.get("start") else None
        with phase("data", "materialization failed", repo):
            views = store._get_feature_views_to_materialize(None)
            materialized = sorted(v.name for v in views)
            if start is None:
                # incremental loads only rows newer than the last run: a view whose schema changed (or a new
                # one) would serve its new fields empty for every older row, so its whole ttl is loaded first
                for view in views:
                    if view.name in before and before[view.name] == _schema(view):
                        continue
                    ttl = view.ttl if view.ttl and view.ttl.total_seconds() > 0 else None
                    store.materialize(start_date=end - ttl if ttl else EPOCH, end_date=end,
                                      feature_views=[view.name])
                    refreshed.append(view.name)
                store.materialize_incremental(end_date=end)
            else:
                store.materialize(start_date=start, end_date=end)
    return {"objects": objects(registry_diff, changes=True), "materialized": materialized,
            "refreshed": sorted(refreshed)}


def _schema(view) -> tuple:
    return (tuple(sorted(view.entities)), tuple((f.name, str(f.dtype)) for f in view.features))


def _schemas(store) -> dict[str, tuple]:
    """The views the registry holds before an apply, by name (none when it does not exist yet)."""
    try:
        return {v.name: _schema(v) for v in store.list_feature_views()}
    except Exception:  # noqa: BLE001 - a registry not created yet (Feast raises several types)
        return {}

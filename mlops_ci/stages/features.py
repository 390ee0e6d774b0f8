"""Features stage: what a change does to the feature repository, once per run, before the models.

    describe base and head ──> compare ──> affected models ("feature view X changed")
                                      ├──> breaking changes to views a served model reads: fail
                                      └──> `feast plan` against each environment's registry
    models with data from the store ──> get_historical_features at the head (and the base) ──> Parquet
                                    ──> skew: a scratch store materialised from the head, online vs offline

Feast runs in its own environment (mlops_ci.features.store); this module only decides. The plan
(mlops_ci.plan) reads the result: an affected model is retrained, data from the store gets content
ids, and the data checks compare the base's and the head's materialised sets as they do files.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from mlops_ci import gitutil
from mlops_ci.config.schema import ModelConfig
from mlops_ci.console import NullProgress, Progress
from mlops_ci.data.fetch import revision_file, worktree_file
from mlops_ci.data.versions import tracked_file
from mlops_ci.errors import ConfigError, DataError
from mlops_ci.features import diff, plan_text, store
from mlops_ci.features.data import cached_file, content_id
from mlops_ci.masking import mask
from mlops_ci.records import Context
from mlops_ci.records.features import (
    AffectedModel,
    EnvironmentPlan,
    FeatureFinding,
    FeaturesRecord,
    MaterialisedData,
    SkewMismatch,
    SkewResult,
    ViewChange,
)
from mlops_ci.workspace import Workspace

SKEW_SEED = 20260101


def repo_folder(ws: Workspace) -> tuple[str, Path]:
    """The feature repository: its path from the git top, and its folder in the work tree."""
    cfg = ws.config.features
    assert cfg is not None
    rel = ws.repo_path(cfg.repo)
    folder = ws.top / rel
    if not (folder / "feature_store.yaml").is_file():
        raise ConfigError(f"{rel}/feature_store.yaml does not exist: features.repo must be a Feast feature repository",
                          hint="point features.repo at the folder `feast init` made (feature_store.yaml and the "
                          "definitions)")
    return rel, folder


def registry_location(ws: Workspace, location: str) -> str:
    """A registry setting as the worker takes it: a URI as written, a path inside the repository absolute."""
    return location if "://" in location else str(ws.root / location)


def last_commit(ws: Workspace, rel: str, rev: str) -> str | None:
    out = gitutil.git(["log", "-1", "--format=%H", rev, "--", rel], ws.top, check=False).stdout.strip()
    return out or None


def export_at(ws: Workspace, rev: str, rel: str, dest: Path) -> Path | None:
    """The feature repository as of ``rev``, written under ``dest``; None when it did not exist there."""
    probe = gitutil.git(["rev-parse", "--verify", "--quiet", f"{rev}:{rel}"], ws.top, check=False)
    if probe.returncode != 0:
        return None
    archive = dest / "repo.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "archive", "--format=tar", rev, "--", rel], cwd=ws.top, stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest / "tree", filter="data")
    return dest / "tree" / rel


def stores_of(ws: Workspace, fe) -> dict[str, str | None]:
    """An environment's ``registry`` and ``online_store`` as the worker's operations take them."""
    return {"registry": registry_location(ws, fe.registry),
            "online_store": str(ws.root / fe.online_store) if fe.online_store else None}


def log_dir(ws: Workspace) -> Path:
    """Where the Feast worker's requests, answers and logs are kept."""
    path = ws.state_dir / "features"
    path.mkdir(parents=True, exist_ok=True)
    return path


class _Batch:
    """Calls for one Feast worker process (it imports Feast once, ~4 s), each with what to do with its answer."""

    def __init__(self, logs: Path, progress: Progress) -> None:
        self.logs, self.progress = logs, progress
        self.calls: list[tuple[str, dict]] = []
        self.then: list = []

    def add(self, op: str, kwargs: dict, then) -> None:
        self.calls.append((op, kwargs))
        self.then.append(then)

    def run(self, what: str) -> None:
        if not self.calls:
            return
        with self.progress.step(what):
            answers = store.many(self.calls, log_dir=self.logs, progress=self.progress)
        for answer, then in zip(answers, self.then):
            then(answer)
        self.calls, self.then = [], []


def _raise(answer):
    if isinstance(answer, BaseException):
        raise answer
    return answer


def run_features(ws: Workspace, ctx: Context, *, tracking=None, progress: Progress | None = None,
                 plan_environments: bool = True) -> FeaturesRecord | None:
    """The features stage's result for this run; None without a ``features`` section. Feast runs at most
    twice: the definitions at the head and the base with the plans, then (when a set is not cached by its
    content id, or the skew check is on) the historical features and the skew check."""
    cfg = ws.config.features
    if cfg is None:
        return None
    progress = progress or NullProgress()
    start = time.monotonic()
    rel, head_repo = repo_folder(ws)
    base = ctx.base_sha
    changed = bool(base) and any(gitutil.is_under(p, rel) for p in gitutil.changed_paths(base, ctx.head_sha, ws.top))
    record = FeaturesRecord(repo=rel, base=base or None, changed=changed, commit=last_commit(ws, rel, ctx.head_sha))
    batch = _Batch(log_dir(ws), progress)
    with tempfile.TemporaryDirectory(prefix="mlops-ci-features-") as tmp:
        base_repo = export_at(ws, base, rel, Path(tmp)) if changed else None
        found: dict[str, dict | None] = {"head": None, "base": None}
        batch.add("describe", {"repo": head_repo}, lambda a: found.update(head=_raise(a).as_json()))
        if base_repo is not None:
            batch.add("describe", {"repo": base_repo}, lambda a: found.update(base=_raise(a).as_json()))
        if changed and plan_environments:  # needs nothing the descriptions decide: the same process
            for env, fe in cfg.environments.items():
                _plan_env(ws, batch, record, head_repo, env, fe)
        batch.run(f"reading the feature definitions in {rel}" + (" at the head and the base, and feast plan against "
                                                                  "each environment's registry" if changed else ""))
        head = found["head"]
        base_desc = found["base"] if changed else head
        changes = diff.compare(base_desc, head) if changed else []
        record.changes = [ViewChange(kind=c.kind, name=c.name, change=c.change, details=c.details,
                                     breaking=c.breaking) for c in changes]
        record.services = {s: diff.service_version(head, s) or "" for s in head.get("services", {})}
        for name, model in ws.config.models.items():
            _model_findings(ws, record, name, model, changes, base_desc, head, tracking)
        copies = _materialise(ws, ctx, record, batch, head_repo, head, base_repo if changed else head_repo, base_desc)
        if cfg.skew.enabled:
            _scratch_skew(ws, ctx, record, batch, head_repo, tmp=Path(tmp))
        batch.run("historical features and the skew check")
        for source, target in copies:  # what training reads: the head's sets, from the cache
            if not source.is_file():
                raise DataError(f"{source}: get_historical_features wrote nothing for {target.name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    record.duration_s = round(time.monotonic() - start, 3)
    return record


def _model_findings(ws: Workspace, record: FeaturesRecord, name: str, model: ModelConfig, changes, base_desc,
                    head, tracking) -> None:
    if model.features is None:
        return
    service = model.features.service
    record.readers[name] = service
    if service not in head.get("services", {}):
        known = sorted(head.get("services", {})) or "none"
        record.findings.append(FeatureFinding(status="fail", model=name, message=(
            f"{name} reads feature service {service!r}, which {record.repo} does not define (it defines: {known})")))
        return
    reasons = diff.affecting(changes, base_desc, head, service)
    if reasons:
        record.affected.append(AffectedModel(model=name, service=service, reasons=reasons))
    broken = diff.breaking_for(changes, base_desc, service)
    if not broken:
        return
    served = _served_in(ws, name, tracking)
    for view, what in broken:
        if served:
            message = (f"feature view {view}: {what}; {name} reads it through {service} and is served in "
                       f"{', '.join(served)}: add a new versioned view (e.g. {view}_v2) beside it, move {name} "
                       f"to it, and remove the old one once no served version reads it")
        else:
            message = f"feature view {view}: {what}; {name} reads it (not served yet, so nothing breaks)"
        record.findings.append(FeatureFinding(status="fail" if served else "warn", model=name, view=view,
                                              message=message))


def _served_in(ws: Workspace, model: str, tracking) -> list[str]:
    """The environments whose alias names a version of ``model`` (unknown without a registry: all of
    those ``promotion.on_merge`` and the feature environments name, to be safe)."""
    envs = list(ws.config.environments)
    if tracking is None:
        return envs
    return [env for env in envs if tracking.version_by_alias(model, ws.config.alias_for(env)) is not None]


def _plan_env(ws: Workspace, batch: _Batch, record: FeaturesRecord, head_repo: Path, env: str, fe) -> None:
    shown = mask(fe.registry)

    def then(answer) -> None:
        if isinstance(answer, BaseException):  # a registry that cannot be read is this environment's finding
            record.plans.append(EnvironmentPlan(env=env, registry=shown,
                                                error=mask(" ".join(str(answer).split()))[:2000]))
            return
        text, counts = plan_text.render(answer.objects)
        record.plans.append(EnvironmentPlan(env=env, registry=shown, registry_diff=mask(text)[:60000],
                                            infra_diff=mask(answer.infra_diff)[:60000], counts=counts))

    batch.add("plan", {"repo": head_repo, **stores_of(ws, fe)}, then)


def _entities_file(ws: Workspace, ctx: Context, rel: str, rev: str | None) -> tuple[str, Path] | None:
    """The entity table's content id and a local copy of it at ``rev`` (None: the work tree)."""
    path = ws.repo_path(rel)
    tracked = tracked_file(ws.top, rev or ctx.head_sha, path)
    if tracked is None:
        return None
    if rev is None:
        return tracked.hash, worktree_file(ws.top, tracked)
    return tracked.hash, revision_file(ws.top, rev, tracked, ws.cache_dir / "data")


def _materialise(ws: Workspace, ctx: Context, record: FeaturesRecord, batch: _Batch, head_repo: Path, head,
                 base_repo: Path | None, base_desc) -> list[tuple[Path, Path]]:
    """get_historical_features for every model whose data comes from the store: the head's set to be
    copied to data.train / data.eval, the base's kept in the cache for the data checks (both cached by
    content id, so an unchanged set is never asked for again). Returns the copies to make."""
    jobs: dict[tuple[str, str], list[tuple[MaterialisedData, Path]]] = {}
    copies: list[tuple[Path, Path]] = []
    for name, model in ws.config.models.items():
        mf = model.features
        if mf is None or mf.entities is None or mf.service not in head.get("services", {}):
            continue
        for role in ("train", "eval"):
            table = getattr(mf.entities, role)
            got = _entities_file(ws, ctx, table, None)
            if got is None:
                raise DataError(f"{ws.repo_path(table)}: the {role} entity table of {name} is not tracked at "
                                f"{ctx.head_sha[:12]}", hint=f"add it with `dvc add {ws.repo_path(table)}` and commit "
                                "the .dvc file")
            target = ws.repo_path(getattr(model.data, role))
            item = MaterialisedData(model=name, role=role, service=mf.service, path=target,
                                    head_id=content_id(mf.service, record.services[mf.service], got[0]))
            record.data.append(item)
            jobs.setdefault(("head", mf.service), []).append((item, got[1]))
            copies.append((cached_file(ws.cache_dir, item.head_id), ws.top / target))
            base_version = diff.service_version(base_desc, mf.service) if base_desc else None
            based = _entities_file(ws, ctx, table, ctx.base_sha) if ctx.base_sha and base_version else None
            if based is not None:
                item.base_id = content_id(mf.service, base_version, based[0])
                if item.base_id != item.head_id:
                    jobs.setdefault(("base", mf.service), []).append((item, based[1]))
    for (side, service), items in jobs.items():
        todo = []
        for item, entities in items:
            cached = cached_file(ws.cache_dir, getattr(item, f"{side}_id"))
            if cached.is_file():
                item.cached.append(side)
                setattr(item, f"{side}_rows", _rows(cached))
            else:
                cached.parent.mkdir(parents=True, exist_ok=True)
                todo.append((item, entities, cached))
        if todo:
            batch.add("historical", {"repo": head_repo if side == "head" else base_repo, "service": service,
                                     "jobs": [(e, c) for _, e, c in todo]}, _rows_of(todo, side))
    return copies


def _rows_of(todo, side: str):
    def then(answer) -> None:
        for (item, _, _), result in zip(todo, _raise(answer)):
            setattr(item, f"{side}_rows", result.rows)
    return then


def _rows(path: Path) -> int | None:
    try:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - a count for the report; the file is read again by the checks
        return None


def _scratch_skew(ws: Workspace, ctx: Context, record: FeaturesRecord, batch: _Batch, head_repo: Path, *,
                  tmp: Path) -> None:
    """Apply the head's definitions to a scratch registry, materialise them into a scratch online store
    up to the latest entity timestamp, and compare online with offline there (TTL, transformations).
    Its result is a function of the service's version and the entity table: cached by both."""
    cfg = ws.config.features
    where = "a scratch store materialised from the head"
    for service in sorted({d.service for d in record.data}):
        model = next(d.model for d in record.data if d.service == service)
        table = ws.model(model).features.entities.train
        got = _entities_file(ws, ctx, table, None)
        key = content_id(service, f"skew:{record.services[service]}:{cfg.skew.sample}:{cfg.skew.tolerance}:{SKEW_SEED}",
                         got[0] if got else "")
        kept = ws.cache_dir / "features" / f"skew-{key.removeprefix('feat:')}.json"
        if kept.is_file():
            try:
                record.skew.append(SkewResult.model_validate_json(kept.read_text()))
                continue
            except ValueError:
                kept.unlink(missing_ok=True)
        scratch = tmp / f"skew-{service}"
        scratch.mkdir()

        def then(answer, s=service, path=kept) -> None:
            result = skew_result(_raise(answer), s, where)
            record.skew.append(result)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(result.model_dump_json())

        batch.add("skew", {"repo": head_repo, "service": service, "entities": ws.top / ws.repo_path(table),
                           "sample": cfg.skew.sample, "tolerance": cfg.skew.tolerance, "seed": SKEW_SEED,
                           "scratch": scratch}, then)


def skew_result(answer, service: str, where: str) -> SkewResult:
    return SkewResult(where=where, service=service, checked=answer.checked, features=len(answer.features),
                      mismatch_count=answer.mismatch_count,
                      mismatches=[SkewMismatch(entity=mask(str(m.entity))[:500], feature=m.feature[:200],
                                               online=mask(str(m.online))[:200], offline=mask(str(m.offline))[:200])
                                  for m in answer.mismatches[:50]])


__all__ = ["export_at", "last_commit", "log_dir", "registry_location", "repo_folder", "run_features", "skew_result",
           "stores_of"]

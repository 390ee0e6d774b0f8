"""The features on merge: `feast apply` to an environment's registry (and materialize-incremental when
configured) before a model that reads them is promoted there, and the skew check of an environment's
online store against its offline store.

A promotion calls :func:`apply_for_promotion` after the policy allowed it and before anything is
committed: when the apply fails, the promotion stops and nothing ships (the model would read
features its environment's registry does not define).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from mlops_ci.console import NullProgress, Progress
from mlops_ci.errors import BackendError, ConfigError, InputError
from mlops_ci.features import plan_text, store
from mlops_ci.masking import mask
from mlops_ci.records.features import SkewResult
from mlops_ci.stages.features import SKEW_SEED, log_dir, repo_folder, skew_result, stores_of
from mlops_ci.toolenv import WorkerFailed
from mlops_ci.workspace import Workspace


class FeatureStoreError(BackendError):
    """Feast refused or failed (apply, materialisation, a read of the stores)."""


@dataclass
class Applied:
    env: str
    registry: str  # masked
    objects: dict[str, int] = field(default_factory=dict)  # transition -> count
    materialized: list[str] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)  # loaded over their whole ttl: new, or their schema changed
    commit: str | None = None  # the feature repository's last commit in this checkout

    def describe(self) -> str:
        counts = plan_text.summary(self.objects)
        mat = f"; materialized {', '.join(self.materialized)}" if self.materialized else ""
        if self.refreshed:
            mat += f" ({', '.join(self.refreshed)} over their whole ttl: new or changed schema)"
        at = f" at {self.commit[:12]}" if self.commit else ""
        return f"applied the feature repository{at} to {self.env}'s registry ({self.registry}): {counts}{mat}"


def _environment(ws: Workspace, env: str):
    cfg = ws.config.features
    if cfg is None:
        raise ConfigError("there is no `features` section in the config", hint="add features: {repo: <folder>}")
    fe = cfg.environments.get(env)
    if fe is None:
        raise ConfigError(f"features.environments has no entry for {env!r}",
                          hint=f"add features.environments.{env}.registry (known: {sorted(cfg.environments)})")
    return fe


def reads_features(ws: Workspace, env: str, model: str) -> bool:
    cfg = ws.config.features
    return bool(cfg and env in cfg.environments and ws.model(model).features is not None)


def apply_to(ws: Workspace, env: str, *, progress: Progress | None = None, now: datetime | None = None) -> Applied:
    """`feast apply` of the work tree's feature repository to ``env``'s registry, then
    materialize-incremental up to ``now`` when the environment says so."""
    from mlops_ci import gitutil
    from mlops_ci.stages.features import last_commit

    progress = progress or NullProgress()
    fe = _environment(ws, env)
    rel, repo = repo_folder(ws)
    end = (now or datetime.now(UTC)).isoformat()
    materialize = {"start": None, "end": end} if fe.materialize else None
    logs = log_dir(ws)
    try:
        with progress.step(f"feast apply to {env}'s registry" + (" and materialize-incremental" if materialize else "")):
            answer = store.apply(repo, **stores_of(ws, fe), materialize=materialize, log_dir=logs)
    except (WorkerFailed, BackendError, InputError) as err:
        raise FeatureStoreError(f"feast apply to {env}'s registry failed: {mask(' '.join(str(err).split()))[:1500]}",
                                hint="fix the feature repository (run `mlops-ci features plan` to see the plan); "
                                "nothing was promoted") from err
    _, counts = plan_text.render(answer.objects)  # less what only Feast's own timestamps changed
    head = gitutil.rev_parse("HEAD", ws.top)
    return Applied(env=env, registry=mask(fe.registry), objects=counts, materialized=list(answer.materialized),
                   refreshed=list(answer.refreshed),
                   commit=last_commit(ws, rel, head) if head else None)


def plan_for(ws: Workspace, env: str, *, progress: Progress | None = None) -> str:
    """What `apply_to` would change in ``env``'s registry: `feast plan` against it, as the report shows it."""
    fe = _environment(ws, env)
    _, repo = repo_folder(ws)
    logs = log_dir(ws)
    with (progress or NullProgress()).step(f"feast plan against {env}'s registry"):
        answer = store.plan(repo, **stores_of(ws, fe), log_dir=logs)
    text, counts = plan_text.render(answer.objects)
    lines = [f"dry run: applying to {env}'s registry ({mask(fe.registry)}): {plan_text.summary(counts)}"]
    lines += [mask(text)] if text else []
    lines += [mask(answer.infra_diff.rstrip())] if answer.infra_diff.strip() else []
    return "\n".join(lines)


def apply_for_promotion(ws: Workspace, env: str, model: str, *, trained_with: str | None = None,
                        forced: bool = False, progress: Progress | None = None) -> Applied | None:
    """Before ``model`` is promoted to ``env``: its features there (None when it reads none, or the
    environment has no feature registry). ``trained_with``: the feature repository's commit the
    version was trained with (its lineage); a checkout whose feature repository differs from it is
    refused (the version would be served features it was not trained on) unless ``forced``."""
    if not reads_features(ws, env, model):
        return None
    if trained_with and not forced:
        _same_definitions(ws, model, trained_with)
    return apply_to(ws, env, progress=progress)


def _same_definitions(ws: Workspace, model: str, trained_with: str) -> None:
    from mlops_ci import gitutil
    from mlops_ci.errors import PromotionError

    rel, _ = repo_folder(ws)

    def tree(rev: str) -> str | None:
        proc = gitutil.git(["rev-parse", "--verify", "--quiet", f"{rev}:{rel}"], ws.top, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    then = tree(trained_with)
    if then is None:  # not in this clone (a shallow one): the apply goes on, said in the notes
        return
    now = tree("HEAD")
    if now != then:
        raise PromotionError(f"{model} was trained with {rel} at {trained_with[:12]}, but this checkout's {rel} "
                             "differs: promoting it would apply features it was not trained on",
                             hint=f"promote from a checkout whose {rel} is the one at {trained_with[:12]} (the merge "
                             "commit of its pull request), or pass --force --reason")


def skew_in(ws: Workspace, env: str, *, models: list[str] | None = None,
            progress: Progress | None = None) -> list[SkewResult]:
    """For each model reading features in ``env`` (with an entity table to sample keys from): its
    service's online values in ``env``'s online store against the offline store's at the same time."""
    progress = progress or NullProgress()
    cfg = ws.config.features
    fe = _environment(ws, env)
    _, repo = repo_folder(ws)
    logs = log_dir(ws)
    out, seen = [], set()
    for name in models or list(ws.config.models):
        mf = ws.model(name).features
        if mf is None or mf.service in seen:
            continue
        if mf.entities is None:
            progress.log(f"{name}: no entity table to sample keys from (models.{name}.features.entities): "
                         "no skew check")
            continue
        seen.add(mf.service)
        entities = ws.top / ws.repo_path(mf.entities.train)
        try:
            with progress.step(f"skew check of {mf.service} in {env}"):
                answer = store.skew(repo, service=mf.service, entities=entities, sample=cfg.skew.sample,
                                    tolerance=cfg.skew.tolerance, seed=SKEW_SEED,
                                    **stores_of(ws, fe),
                                    log_dir=logs)
        except (WorkerFailed, BackendError, InputError) as err:
            raise FeatureStoreError(f"the skew check of {mf.service} in {env} failed: "
                                    f"{mask(' '.join(str(err).split()))[:1500]}") from err
        out.append(skew_result(answer, mf.service, f"the {env} online store"))
    return out


__all__ = ["Applied", "FeatureStoreError", "apply_for_promotion", "apply_to", "reads_features", "skew_in"]

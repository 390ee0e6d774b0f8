"""Checks that span fields, run after the schema accepted the shapes.

Each problem carries the location (a path of keys) so that the loader can point at the
file:line:column where the user must make the fix.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from mlops_ci.config.checks import ChecksConfig, setting, threshold_fields
from mlops_ci.config.schema import ARGO_TEMPLATES as TEMPLATES
from mlops_ci.config.schema import Config, Threshold, TrainConfig
from mlops_ci.metrics import METRICS


@dataclass(frozen=True)
class Problem:
    loc: tuple[str | int, ...]
    message: str
    hint: str | None = None


def _order_problems(config: Config) -> list[Problem]:
    """policy.after names another defined environment, and the order has no cycle."""
    found: list[Problem] = []
    envs = sorted(config.environments)
    for env, ec in config.environments.items():
        after = ec.policy.after
        if after is None:
            continue
        loc = ("environments", env, "policy", "after")
        if after == env:
            found.append(Problem(loc, f"{env} cannot come after itself", f"name another environment: {envs}"))
        elif after not in config.environments:
            found.append(Problem(loc, f"environment {after!r} is not defined", f"use one of {envs}"))
        else:
            seen, step = {env}, after
            while step is not None and step not in seen:
                seen.add(step)
                step = config.environments[step].policy.after if step in config.environments else None
            if step == env:
                found.append(Problem(loc, f"the environments' order loops back to {env}",
                                     "make one environment the first (no policy.after)"))
    return found


def _rollout_problems(config: Config) -> list[Problem]:
    """A rollout needs every model served in the environment to be an InferenceService with no fixed split."""
    from mlops_ci.config.rollout import CANARY_PERCENT_REFUSED, DEPLOYMENT_REFUSED

    found: list[Problem] = []
    for env, ec in config.environments.items():
        if ec.rollout is None:
            continue
        for name, model in config.models.items():
            if model.serving.kind == "deployment":
                found.append(Problem(("environments", env, "rollout"), DEPLOYMENT_REFUSED.format(env=env, model=name)))
            elif getattr(model.serving, "canary_percent", None) is not None:
                found.append(Problem(("models", name, "serving", "canary_percent"),
                                     CANARY_PERCENT_REFUSED.format(env=env, model=name)))
            logs = ec.rollout.analysis.logs
            if logs is not None and logs.metric and logs.metric not in METRICS[model.evaluation.task]:
                found.append(Problem(("environments", env, "rollout", "analysis", "logs", "metric"),
                                     f"{logs.metric!r} is not a metric of {name}'s task ({model.evaluation.task})",
                                     f"use one of {sorted(METRICS[model.evaluation.task])}"))
    return found


def _feature_problems(config: Config) -> list[Problem]:
    """A model's ``features`` needs the ``features`` section; feature environments are environments;
    data from the store is Parquet that mlops-ci writes, not the entity tables themselves."""
    found: list[Problem] = []
    envs = sorted(config.environments)
    if config.features is not None:
        for env in config.features.environments:
            if env not in config.environments:
                found.append(Problem(("features", "environments", env), f"environment {env!r} is not defined",
                                     f"use one of {envs}"))
    for name, model in config.models.items():
        mf = model.features
        if mf is None:
            continue
        if config.features is None:
            found.append(Problem(("models", name, "features"), f"{name} reads feature service {mf.service!r} but "
                                 "there is no top-level `features` section", "add features: {repo: <folder>}"))
        if mf.entities is None:
            continue
        for role in ("train", "eval"):
            target, table = getattr(model.data, role), getattr(mf.entities, role)
            if not target.endswith(".parquet"):
                found.append(Problem(("models", name, "data", role), f"{target!r} is written from the feature store "
                                     "as Parquet", f"name it {target.rsplit('.', 1)[0]}.parquet"))
            if target == table:
                found.append(Problem(("models", name, "features", "entities", role), f"{table!r} is also data.{role}, "
                                     "which mlops-ci writes from the store", "give the entity table its own file"))
    return found


def problems(config: Config) -> list[Problem]:
    found: list[Problem] = []
    envs = sorted(config.environments)
    on_merge = config.promotion.on_merge
    if on_merge is not None and on_merge not in config.environments:
        found.append(
            Problem(("promotion", "on_merge"), f"environment {on_merge!r} is not defined",
                    f"use one of {envs} or add it under 'environments'")
        )
    found += _order_problems(config)
    found += _rollout_problems(config)
    found += _feature_problems(config)
    for name, model in config.models.items():
        base = ("models", name)
        ev = model.evaluation
        known = METRICS[ev.task]
        if ev.champion_env is not None and ev.champion_env not in config.environments:
            found.append(
                Problem(base + ("evaluation", "champion_env"),
                        f"environment {ev.champion_env!r} is not defined", f"use one of {envs}")
            )
        for i, metric in enumerate(ev.metrics or []):
            if metric not in known:
                found.append(
                    Problem(base + ("evaluation", "metrics", i),
                            f"unknown metric {metric!r} for task {ev.task}",
                            f"use one of {sorted(known)}")
                )
        computed = set(ev.metrics or known)
        valid = sorted(computed & set(known))  # never suggest a metric that is itself an error
        for metric, gate in ev.gates.items():
            loc = base + ("evaluation", "gates", metric)
            if metric not in computed:
                found.append(Problem(loc, f"gate on metric {metric!r}, which is not computed",
                                     _gate_hint(metric, valid, sorted(known))))
            if gate.min is None and gate.max is None and gate.max_regression is None:
                found.append(Problem(loc, f"gate on {metric!r} sets no bound",
                                     "set min, max or max_regression"))
            if gate.min is not None and gate.max is not None and gate.min > gate.max:
                found.append(Problem(loc + ("min",), f"min {gate.min} is above max {gate.max}"))
        serving = model.serving
        if serving.min_replicas > serving.max_replicas:
            found.append(
                Problem(base + ("serving", "min_replicas"),
                        f"min_replicas {serving.min_replicas} is above max_replicas {serving.max_replicas}")
            )
        checks = model.checks
        found += _threshold_problems(base + ("checks",), model.checks, model.data.label)
        found += _threshold_problems(base + ("monitoring",), model.monitoring, model.data.label)
        found += _argo_problems(base + ("train",), model.train)
        if model.data.label in checks.ignore_columns:
            found.append(Problem(base + ("checks", "ignore_columns"),
                                 f"the label column {model.data.label!r} cannot be ignored"))
    return found


def _gate_hint(metric: str, valid: list[str], known: list[str]) -> str:
    if metric in known:  # a metric of the task, left out of evaluation.metrics
        return f"add {metric!r} to evaluation.metrics" + (f", or gate one of {valid}" if valid else "")
    close = difflib.get_close_matches(metric, valid or known, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    if valid:
        return f"{guess}gate one of {valid}"
    return f"{guess}gate one of {known}, listed in evaluation.metrics"


def _threshold_problems(loc: tuple[str | int, ...], section, label: str) -> list[Problem]:
    """warn above fail, in every threshold of ``section`` (``checks`` or ``monitoring``) as it
    applies: model-level ones after their defaults filled in, column overrides after the
    model-level threshold filled in."""
    checks = section if isinstance(section, ChecksConfig) else section.as_checks(label)
    found = []
    for path, default in threshold_fields(type(section)):
        th: Threshold = setting(section, path)
        if _inverted(th):
            # point at the level the file changed; the other one is the default
            level, kept = ("fail", "warn") if th.warn == default.warn else ("warn", "fail")
            same = getattr(th, kept) == getattr(default, kept)
            note = f" ({kept} {getattr(th, kept)} is the default)" if same else ""
            found.append(Problem(loc + (*path, level), f"warn {th.warn} is above fail {th.fail}{note}",
                                 "lower warn, raise fail, or write fail: null to only warn"))
    for column, over in checks.columns.items():
        merged = checks.column_thresholds(column, is_label=column == label)
        for key, th in merged.items():
            given = getattr(over, key)
            if given is None or not _inverted(th):
                continue
            level = "warn" if "warn" in given.model_fields_set else "fail"
            both = {"warn", "fail"} <= given.model_fields_set
            note = "" if both else " (the other level is the model-level one)"
            found.append(Problem(loc + ("columns", column, key, level), f"warn {th.warn} is above fail {th.fail}"
                                 f"{note}", "lower warn, raise fail, or write fail: null to only warn"))
    return found


def _inverted(th: Threshold) -> bool:
    return th.warn is not None and th.fail is not None and th.warn > th.fail


def _argo_problems(loc: tuple[str | int, ...], train: TrainConfig) -> list[Problem]:
    argo = train.argo
    if argo is None:
        if train.backend == "argo":
            return [Problem(loc + ("backend",), "backend 'argo' needs an 'argo' section under train",
                            "add train.argo with at least 'image' (name@sha256:...) and 'server_url'")]
        return []
    loc = loc + ("argo",)
    found = []
    if argo.transport == "server" and argo.server_url is None:
        found.append(Problem(loc + ("transport",), "transport 'server' needs server_url",
                             "set argo.server_url to the Argo Server's https:// URL, or use transport: kubernetes"))
    if argo.template == TEMPLATES["torchrun"] and argo.nodes > 1:
        found.append(Problem(loc + ("nodes",), f"template {argo.template} runs on one node, not {argo.nodes}",
                             f"set nodes: 1, or leave 'template' out to use {TEMPLATES['jobset']}"))
    multi_node = argo.nodes > 1 or argo.template == TEMPLATES["jobset"]
    if multi_node and argo.checkpoint_uri is None:
        found.append(Problem(loc + ("checkpoint_uri",), "multi-node training needs checkpoint_uri",
                             "set it to storage every pod reaches (s3://..., gs://...): checkpoints and "
                             "rank 0's result.json go there"))
    return found

"""Checks that span fields, run after the schema accepted the shapes.

Each problem carries the location (a path of keys) so that the loader can point at the
file:line:column where the user must make the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_ci.config.schema import ARGO_TEMPLATES as TEMPLATES
from mlops_ci.config.schema import Config, TrainConfig
from mlops_ci.metrics import METRICS


@dataclass(frozen=True)
class Problem:
    loc: tuple[str | int, ...]
    message: str
    hint: str | None = None


def problems(config: Config) -> list[Problem]:
    found: list[Problem] = []
    envs = sorted(config.environments)
    on_merge = config.promotion.on_merge
    if on_merge is not None and on_merge not in config.environments:
        found.append(
            Problem(("promotion", "on_merge"), f"environment {on_merge!r} is not defined",
                    f"use one of {envs} or add it under 'environments'")
        )
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
        for metric, gate in ev.gates.items():
            loc = base + ("evaluation", "gates", metric)
            if metric not in computed:
                found.append(
                    Problem(loc, f"gate on metric {metric!r}, which is not computed",
                            f"gate one of {sorted(computed)}")
                )
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
        thresholds = [(("drift", key), getattr(checks.drift, key)) for key in ("psi", "js", "wasserstein")]
        thresholds += [(("label", key), getattr(checks.label, key)) for key in ("psi", "js", "wasserstein")]
        thresholds += [(("nulls", key), getattr(checks.nulls, key)) for key in ("max_increase", "max_rate")]
        thresholds += [(("rows", "max_change"), checks.rows.max_change)]
        for column, over in checks.columns.items():
            thresholds += [(("columns", column, key), th) for key, th in over if th is not None]
        for path, th in thresholds:
            if th.warn is not None and th.fail is not None and th.warn > th.fail:
                found.append(Problem(base + ("checks", *path, "warn"), f"warn {th.warn} is above fail {th.fail}"))
        found += _argo_problems(base + ("train",), model.train)
        if model.data.label in checks.ignore_columns:
            found.append(Problem(base + ("checks", "ignore_columns"),
                                 f"the label column {model.data.label!r} cannot be ignored"))
    return found


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

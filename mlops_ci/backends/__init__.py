"""Backends, one module each behind a Protocol, registered in one explicit dict per role.

| role      | registry                                   | embedded default        |
|-----------|--------------------------------------------|-------------------------|
| tracking  | mlops_ci.backends.tracking.TRACKING        | MLflow on SQLite        |
| trainer   | mlops_ci.backends.trainers.TRAINERS        | torchrun on this machine|
| publisher | mlops_ci.backends.publishers.PUBLISHERS    | Markdown file + terminal|
| gitops    | mlops_ci.backends.gitops.GITOPS            | local bare git repo     |

Adding a backend is one new module and one registry line. Each name is written once, in its
registry: the configuration chooses by name (``tracking.backend``, ``models.<m>.train.backend``,
``gitops.backend``; ``--to`` and ``--backend`` on the command line), and without one a role uses
the first entry of its registry. A name the registry does not have is a config error at its line
(:func:`name_problems`, run by every command that loads the config).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlops_ci.backends.naming import choose

if TYPE_CHECKING:
    from mlops_ci.config import Config
    from mlops_ci.config.semantics import Problem

def registries() -> dict[str, tuple[str, Mapping[str, type]]]:
    """Setting path (with ``*`` for a model) -> (role, registry), for the names the config may give."""
    from mlops_ci.backends.gitops import GITOPS
    from mlops_ci.backends.tracking import TRACKING
    from mlops_ci.backends.trainers import TRAINERS

    return {"tracking.backend": ("tracking backend", TRACKING), "gitops.backend": ("GitOps remote", GITOPS),
            "models.*.train.backend": ("trainer", TRAINERS)}


def name_problems(config: Config) -> list[Problem]:
    """Every backend name in ``config`` that its role's registry does not have."""
    from mlops_ci.config.semantics import Problem

    settings: list[tuple[tuple[str, ...], str | None]] = [
        (("tracking", "backend"), config.tracking.backend), (("gitops", "backend"), config.gitops.backend),
        *((("models", m, "train", "backend"), cfg.train.backend) for m, cfg in config.models.items())]
    found = []
    for loc, name in settings:
        role, registry = registries()["models.*.train.backend" if loc[0] == "models" else ".".join(loc)]
        if name is not None and name not in registry:
            found.append(Problem(loc, f"{name!r} is not a {role}", f"use one of: {', '.join(registry)}"))
    return found


__all__ = ["choose", "name_problems", "registries"]

"""Promotion as code: `.mlops-ci.promotions.yaml` declares which model version each environment serves.

    version: 1
    environments:
      staging:
        churn: 3                     # registry version 3 of model churn
      prod:
        churn: {version: 2, reason: "hotfix, gates waived by @alice"}

The file sits beside `.mlops-ci.yaml` (not in `.mlops-ci/`, the tool's git-ignored state folder)
and is reviewed like any other change: a pull request that changes a desired version is a
promotion request (its check shows the plan, see :mod:`mlops_ci.stages.declared`) and
`mlops-ci promote --declared` applies it once merged. Versions are registry version numbers;
``reason`` lets a version whose gates failed through (it is recorded, as with ``--force``).

The file is read with ruamel.yaml and validated like the config: every error names
file:line:column. Environments and models must exist in `.mlops-ci.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops_ci import gitutil
from mlops_ci.config.loader import PROMOTIONS_NAME, load_yaml, plain_data, position
from mlops_ci.config.schema import Config, Name
from mlops_ci.errors import ConfigError

MAX_BYTES = 256 << 10


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Entry(_Strict):
    version: str = Field(pattern=r"^[1-9][0-9]{0,8}$", description="a registry version number")
    reason: str | None = Field(default=None, min_length=1, max_length=200,
                               description="why a version whose gates failed is promoted anyway (recorded)")


class _File(_Strict):
    version: Literal[1]
    environments: dict[Name, dict[Name, _Entry]] = {}


@dataclass(frozen=True)
class Desired:
    """One declared entry: ``model`` should serve ``version`` in ``env``."""

    env: str
    model: str
    version: str
    reason: str | None
    source: str  # file:line

    @property
    def key(self) -> tuple[str, str]:
        return self.env, self.model


def _normalise(doc: Any) -> Any:
    """``model: 3`` is short for ``model: {version: "3"}``; version numbers may be written unquoted."""
    if not isinstance(doc, dict) or not isinstance(doc.get("environments"), dict):
        return doc
    envs = {}
    for env, models in doc["environments"].items():
        if not isinstance(models, dict):
            envs[env] = models
            continue
        out = {}
        for model, value in models.items():
            if isinstance(value, (int, str)) and not isinstance(value, bool):
                value = {"version": value}
            if isinstance(value, dict) and isinstance(value.get("version"), int) \
                    and not isinstance(value.get("version"), bool):
                value = {**value, "version": str(value["version"])}
            out[model] = value
        envs[env] = out
    return {**doc, "environments": envs}


def _message(where: str, loc: tuple, error: dict) -> str:
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = "version, environments" if len(loc) == 1 else "version, reason"
        return f"{where}: unknown key {dotted} (fix: allowed keys: {allowed})"
    if kind == "missing":
        return f"{where}: {dotted} is required (fix: add '{loc[-1]}:')"
    if kind == "string_pattern_mismatch":
        return f"{where}: {dotted}: {error.get('input')!r} is not a registry version number (fix: write e.g. 3)"
    msg = error["msg"].removeprefix("Value error, ")
    return f"{where}: {dotted}: {msg}"


def parse(data: bytes, config: Config, *, name: str = PROMOTIONS_NAME) -> dict[tuple[str, str], Desired]:
    """The entries of a promotions file, keyed by (env, model); ConfigError (file:line:column) if invalid."""
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{name}: {len(data)} bytes is larger than the {MAX_BYTES} a promotions file may have")
    doc = load_yaml(data, name)
    if not isinstance(doc, dict):
        raise ConfigError(f"{name}:1:1: the top level must be a mapping with 'version: 1' and 'environments:'",
                          hint="see the example in the docstring of mlops_ci/promotions.py or the README")
    try:
        parsed = _File.model_validate(_normalise(plain_data(doc)))
    except ValidationError as err:
        raise ConfigError("\n".join(_message(position(name, doc, tuple(e["loc"])), tuple(e["loc"]), e)
                                    for e in err.errors())) from None
    problems, out = [], {}
    for env, models in parsed.environments.items():
        if env not in config.environments:
            problems.append(f"{position(name, doc, ('environments', env))}: environment {env!r} is not defined "
                            f"in .mlops-ci.yaml (fix: use one of {', '.join(sorted(config.environments))})")
            continue
        for model, entry in models.items():
            where = position(name, doc, ("environments", env, model))
            if model not in config.models:
                problems.append(f"{where}: model {model!r} is not defined in .mlops-ci.yaml "
                                f"(fix: use one of {', '.join(sorted(config.models))})")
                continue
            out[(env, model)] = Desired(env=env, model=model, version=entry.version,
                                        reason=" ".join(entry.reason.split()) if entry.reason else None,
                                        source=where.rsplit(":", 1)[0])
    if problems:
        raise ConfigError("\n".join(problems))
    return out


def repo_path(ws) -> str:
    """Where the promotions file is, relative to the git top (beside `.mlops-ci.yaml`)."""
    return ws.repo_path(PROMOTIONS_NAME)


def desired(ws, rev: str) -> dict[tuple[str, str], Desired]:
    """The declared entries at commit ``rev`` (empty when the file does not exist there)."""
    path = repo_path(ws)
    data = gitutil.show_file(rev, path, ws.top)
    if data is None:
        return {}
    return parse(data, ws.config, name=path)


def changed_entries(ws, base: str, head: str) -> list[tuple[Desired, str | None]]:
    """Entries at ``head`` whose version or reason differs from ``base``, each with the base's version.

    An entry removed from the file asks for nothing (the environment keeps what it serves). A base
    file that no longer validates (a model since removed from the config) counts as empty."""
    after = desired(ws, head)
    try:
        before = desired(ws, base)
    except ConfigError:
        before = {}
    out = []
    for key, entry in sorted(after.items()):
        old = before.get(key)
        if old is None or (old.version, old.reason) != (entry.version, entry.reason):
            out.append((entry, old.version if old else None))
    return out


def promote_via(config: Config, env: str) -> Literal["push", "pull_request"]:
    """How a promotion to ``env`` lands: the environment's ``promote_via``; else a pull request for an
    environment named prod or production whose GitOps repository is on GitHub (gitops.github_repository,
    or a github.com remote), and a push otherwise (a local bare repository has nowhere to open one)."""
    from mlops_ci.backends.gitops.github_pr import github_slug

    chosen = config.environments[env].promote_via
    if chosen:
        return chosen
    on_github = bool(config.gitops.github_repository or github_slug(config.gitops.remote))
    return "pull_request" if env in ("prod", "production") and on_github else "push"


__all__ = ["PROMOTIONS_NAME", "Desired", "changed_entries", "desired", "parse", "promote_via", "repo_path"]

"""Choosing a backend by name from its role's registry (the roles' ``*_for`` functions use it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from mlops_ci.errors import ConfigError

T = TypeVar("T")


def choose(registry: Mapping[str, T], name: str | None, *, role: str, setting: str) -> T:
    """The registry's entry called ``name``; without a name, the role's default (its first entry)."""
    if name is None:
        return next(iter(registry.values()))
    if name not in registry:
        raise ConfigError(f"{setting}: {name!r} is not a {role}", hint=f"use one of: {', '.join(registry)}")
    return registry[name]


__all__ = ["choose"]

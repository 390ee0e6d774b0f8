"""What every section of the `.mlops-ci.yaml` schema builds on: the strict base model, names,
repository-relative paths, actions, and the warn/fail ``Threshold`` with its merge rule.

A ``Threshold`` setting written partly (``psi: {warn: 0.1}``) keeps the levels it leaves out
from that setting's default (``fail: 0.25``); an explicit ``null`` turns a level off. The rule
lives in :class:`Strict`, so it holds for every ``Threshold`` field of every section, including
ones added later.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# Names end up in Kubernetes object names, MLflow registry names, git paths and labels.
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")

# An image pinned by digest: [registry[:port]/]path[:tag]@sha256:<64 hex>. A tag alone can
# move under a running training; a digest names one image for good.
IMAGE_DIGEST_RE = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$"
)


def _name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid name: use 1-40 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _relative_path(value: str) -> str:
    parts = value.replace("\\", "/").split("/")
    if value.startswith("/") or ".." in parts or not value.strip():
        raise ValueError(
            f"{value!r} must be a path inside the repository, relative to .mlops-ci.yaml "
            "(no leading '/', no '..')"
        )
    return value


Name = Annotated[str, AfterValidator(_name)]
RelPath = Annotated[str, AfterValidator(_relative_path)]
Action = Literal["fail", "warn", "ignore"]


_UNIT_NAMES = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration_setting(units: str, examples: str, digits: int = 5):
    """A duration setting's parser and its pydantic type: a whole number above 0 (at most ``digits``
    digits) and one of ``units`` (``"mhdw"``: ``30m``, ``12h``, ``1d``, ``2w``) as a timedelta,
    ValueError otherwise; the error names the units and ``examples``."""
    from datetime import timedelta

    pattern = re.compile(rf"^(?P<n>[1-9][0-9]{{0,{digits - 1}}})(?P<unit>[{units}])$")
    listed = ", ".join(units[:-1]) + f" or {units[-1]}"

    def parse(value: str) -> timedelta:
        match = pattern.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"{value!r} is not a duration: write a whole number above 0 and a unit ({listed}), "
                             f"e.g. {examples}")
        return timedelta(**{_UNIT_NAMES[match["unit"]]: int(match["n"])})

    def checked(value: str) -> str:
        parse(value)
        return value

    return parse, Annotated[str, AfterValidator(checked)]


def setting_errors(problems: list[tuple[str, Any, str]]) -> list[Any]:
    """One pydantic error per (setting, value, message), located at the setting (where the loader
    points), for a rule across settings to raise as ``ValidationError.from_exception_data``."""
    return [{"type": "value_error", "loc": (name,), "input": value, "ctx": {"error": ValueError(message)}}
            for name, value, message in problems]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _partial_threshold(cls, value: Any, info: ValidationInfo) -> Any:
        """A ``Threshold`` given in part keeps the field default's other levels."""
        field = cls.model_fields.get(info.field_name or "")
        default = field.default if field is not None else None
        if not isinstance(default, Threshold):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(f"a threshold has levels: write {{warn: {value}}} or {{fail: {value}}} (or both)")
        if isinstance(value, Threshold):
            value = {key: getattr(value, key) for key in value.model_fields_set}
        if isinstance(value, dict):
            return {**default.model_dump(), **value}
        return value  # not a mapping: pydantic reports it


_LEVEL_HELP = {
    "warn": "a score at or above this warns. Left out: the setting's default; null: never warns",
    "fail": "a score at or above this fails the check. Left out: the setting's default; null: never fails "
            "(the setting only warns)",
}


def _threshold_schema(schema: dict[str, Any]) -> None:
    # Each setting's own default (e.g. drift.psi: {warn: 0.1, fail: 0.25}) is what a level left
    # out takes, not null: the shared definition shows no per-level default.
    for name, prop in schema.get("properties", {}).items():
        prop.pop("default", None)
        prop["description"] = _LEVEL_HELP[name]


class Threshold(Strict):
    """A score at or above ``warn`` warns; at or above ``fail`` fails the check. Write one level to
    change it alone (the other keeps its default); write null to turn a level off."""

    model_config = ConfigDict(json_schema_extra=_threshold_schema)

    warn: float | None = Field(default=None, ge=0)
    fail: float | None = Field(default=None, ge=0)

    def overridden_by(self, override: Threshold | None) -> Threshold:
        """This threshold with the levels ``override`` sets (explicit nulls included) replaced."""
        if override is None:
            return self
        return self.model_copy(update={key: getattr(override, key) for key in override.model_fields_set})

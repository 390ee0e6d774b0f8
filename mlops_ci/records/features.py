"""The feature store's part of a run: what the change does to the feature repository (per
environment's registry), which models it touches, what was materialised and what skew was found."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlops_ci.records.base import (
    ContentId,
    Ident,
    LongText,
    Message,
    ModelName,
    PathText,
    Record,
    Sha,
    Status,
    worst,
)

MAX_LISTED = 200


class ViewChange(Record):
    """A feature view (or service, or entity) that differs between the base and the head."""

    kind: Literal["view", "service", "entity"]
    name: Ident
    change: Literal["added", "removed", "changed"]
    details: list[Message] = Field(default=[], max_length=MAX_LISTED)  # "field tenure added (Int64)"
    breaking: list[Message] = Field(default=[], max_length=MAX_LISTED)  # what a reader of the old one loses


class EnvironmentPlan(Record):
    """`feast plan` of the head's definitions against one environment's registry."""

    env: Ident
    registry: PathText  # where it is (credentials masked)
    registry_diff: LongText = ""
    infra_diff: LongText = ""
    counts: dict[Ident, int] = Field(default={}, max_length=10)  # transition -> objects
    error: Message | None = None


class AffectedModel(Record):
    model: ModelName
    service: Ident
    reasons: list[Message] = Field(default=[], max_length=MAX_LISTED)


class MaterialisedData(Record):
    """Training or evaluation data written from the store with get_historical_features."""

    model: ModelName
    role: Literal["train", "eval"]
    service: Ident
    path: PathText
    head_id: ContentId
    head_rows: int | None = None
    base_id: ContentId | None = None
    base_rows: int | None = None
    cached: list[Literal["base", "head"]] = Field(default=[], max_length=2)


class SkewMismatch(Record):
    entity: Message
    feature: Ident
    online: Message
    offline: Message


class SkewResult(Record):
    """Online values against the offline store's at the same timestamp, for a sample of entities."""

    where: Ident  # "a scratch store materialised from the head" or "the staging online store"
    service: Ident
    checked: int = 0
    features: int = 0
    mismatch_count: int = 0
    mismatches: list[SkewMismatch] = Field(default=[], max_length=50)

    @property
    def status(self) -> Status:
        return "fail" if self.mismatch_count else "pass"


class FeatureFinding(Record):
    status: Status
    message: Message
    model: ModelName | None = None
    view: Ident | None = None


class FeaturesRecord(Record):
    """The features stage's result: one per run (the feature repository is shared by the models)."""

    kind: Literal["features"] = "features"
    repo: PathText
    base: Sha | None = None  # the base revision the definitions were compared with (None: none)
    changed: bool = False  # the change touches the feature repository
    commit: Sha | None = None  # the last commit that changed the feature repository, at the head
    services: dict[Ident, Ident] = Field(default={}, max_length=MAX_LISTED)  # service -> version
    readers: dict[ModelName, Ident] = Field(default={}, max_length=MAX_LISTED)  # model -> the service it reads
    changes: list[ViewChange] = Field(default=[], max_length=MAX_LISTED)
    plans: list[EnvironmentPlan] = Field(default=[], max_length=50)
    affected: list[AffectedModel] = Field(default=[], max_length=MAX_LISTED)
    data: list[MaterialisedData] = Field(default=[], max_length=MAX_LISTED)
    skew: list[SkewResult] = Field(default=[], max_length=MAX_LISTED)
    findings: list[FeatureFinding] = Field(default=[], max_length=MAX_LISTED)
    duration_s: float = 0.0

    @property
    def status(self) -> Status:
        return worst(["pass", *(f.status for f in self.findings), *(s.status for s in self.skew),
                      *("fail" for p in self.plans if p.error)])

    def failed_for(self, model: str) -> list[str]:
        """What failed in the feature checks for ``model``: its findings, and skew in its service."""
        service = self.readers.get(model)
        return ([f.message for f in self.findings if f.status == "fail" and f.model == model]
                + [f"skew in {s.where}: {s.mismatch_count} mismatch(es) in {s.service}" for s in self.skew
                   if s.mismatch_count and s.service == service])

    def service_of(self, model: str) -> str | None:
        return self.readers.get(model)

    def affected_model(self, model: str) -> AffectedModel | None:
        return next((a for a in self.affected if a.model == model), None)

    def data_of(self, model: str, role: str) -> MaterialisedData | None:
        return next((d for d in self.data if d.model == model and d.role == role), None)


__all__ = ["AffectedModel", "EnvironmentPlan", "FeatureFinding", "FeaturesRecord", "MaterialisedData",
           "SkewMismatch", "SkewResult", "ViewChange"]

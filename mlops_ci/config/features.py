"""`features` (the feature store, as code) and `models.<m>.features` (what a model reads from it).

    features:
      repo: feature_repo            # feature_store.yaml and the definitions (Feast)
      environments:                 # the registry each environment serves from
        staging:
          registry: .mlops-ci/features/staging/registry.db     # or s3://..., gs://...
          online_store: .mlops-ci/features/staging/online.db   # the SQLite online store (local provider)
          materialize: true         # materialize-incremental after apply, before the promotion
      skew: {sample: 50, tolerance: 1.0e-6}
    models:
      churn:
        features:
          service: churn_v1         # the feature service it trains on and is served with
          entities:                 # training data from get_historical_features (point in time)
            train: data/train_entities.parquet   # DVC-tracked: join keys, event_timestamp, label
            eval: data/eval_entities.parquet
        data: {train: data/train.parquet, eval: data/eval.parquet, label: churned}  # written by mlops-ci

A pull request that changes ``repo`` is planned against each environment's registry (``feast
plan``); every model whose service reads a changed view is retrained in it. On merge, the features
are applied to the promoted environment's registry before the model is promoted.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from mlops_ci.config.base import Name, RelPath, Strict

_FEAST_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")
_URI = re.compile(r"^(s3|gs|az|abfs|abfss|gcs|file)://[^\s@]{1,500}$")


def _feast_name(value: str) -> str:
    if not _FEAST_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a Feast object name (letters, digits, '_' and '-', at most 100)")
    return value


def _registry(value: str) -> str:
    if "://" in value:
        if not _URI.fullmatch(value):
            raise ValueError(f"{value!r}: a registry URI is s3://, gs://, az:// or file:// without credentials "
                             "(the store's own credentials come from the environment, never from this file)")
        return value
    parts = value.replace("\\", "/").split("/")
    if value.startswith("/") or ".." in parts or not value.strip():
        raise ValueError(f"{value!r} must be a URI or a path inside the repository, relative to .mlops-ci.yaml")
    return value


FeastName = Annotated[str, AfterValidator(_feast_name)]
RegistryLocation = Annotated[str, AfterValidator(_registry)]


class FeatureEnvironment(Strict):
    """The registry (and online store) one environment's models are served from."""

    registry: RegistryLocation = Field(description="the environment's Feast registry: a path in the repository "
                                       "(the local provider's file registry) or an s3://, gs:// or az:// URI")
    online_store: RelPath | None = Field(default=None, description="the SQLite online store's path for this "
                                         "environment (local provider; default: feature_store.yaml's)")
    materialize: bool = Field(default=False, description="after `feast apply`, run materialize-incremental "
                              "(up to now) before the model is promoted")


class SkewCheck(Strict):
    enabled: bool = True
    sample: int = Field(default=50, ge=1, le=10_000, description="entities whose online values are compared "
                        "with the offline store's")
    tolerance: float = Field(default=1e-6, ge=0, description="relative and absolute tolerance for numbers")


class FeaturesConfig(Strict):
    repo: RelPath = Field(description="the Feast feature repository (feature_store.yaml and the definitions)")
    environments: dict[Name, FeatureEnvironment] = Field(
        default={}, description="per environment of `environments`: its registry; a pull request is planned "
        "against each, and a promotion applies the features there first")
    skew: SkewCheck = SkewCheck()


class EntityTables(Strict):
    train: RelPath = Field(description="entity table of the training set (Parquet, DVC-tracked): the join keys, "
                           "event_timestamp and the label")
    eval: RelPath = Field(description="entity table of the evaluation set")


class ModelFeatures(Strict):
    """What a model reads from the feature store."""

    service: FeastName = Field(description="the feature service the model trains on and is served with")
    entities: EntityTables | None = Field(
        default=None, description="take the training and evaluation data from the store: mlops-ci writes "
        "get_historical_features(entities, service) to data.train and data.eval (Parquet) at the head, and "
        "at the base for the data checks")


__all__ = ["EntityTables", "FeatureEnvironment", "FeaturesConfig", "ModelFeatures", "SkewCheck"]

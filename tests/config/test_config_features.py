"""The `features` section and a model's `features`: each mistake refused at its line with the fix."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, refused_at

from mlops_ci.config import load_config

BASE = (FIXTURES / "tiny" / ".mlops-ci.yaml").read_text()
TOP = "features:\n  repo: feature_repo\n  environments:\n    staging: {registry: .mlops-ci/features/staging.db}\n"
MODEL = "    features:\n      service: tiny_v1\n"


def config(tmp_path, *, top: str = TOP, model: str = MODEL, data: tuple[str, str] = ("data/train.csv", "data/eval.csv")):
    text = BASE.replace("train: data/train.csv", f"train: {data[0]}").replace("eval: data/eval.csv", f"eval: {data[1]}")
    text = text.replace("    data:\n", model + "    data:\n", 1)
    path = tmp_path / ".mlops-ci.yaml"
    path.write_text(top + text)
    return path


def test_a_feature_store_setup_loads_with_its_defaults(tmp_path):
    entities = MODEL + "      entities: {train: data/train_entities.parquet, eval: data/eval_entities.parquet}\n"
    cfg = load_config(config(tmp_path, model=entities, data=("data/train.parquet", "data/eval.parquet"))).config
    assert cfg.features.repo == "feature_repo"
    staging = cfg.features.environments["staging"]
    assert (staging.registry, staging.online_store, staging.materialize) == (".mlops-ci/features/staging.db", None, False)
    assert (cfg.features.skew.enabled, cfg.features.skew.sample) == (True, 50)
    mf = cfg.models["tiny"].features
    assert mf.service == "tiny_v1" and mf.entities.train == "data/train_entities.parquet"


@pytest.mark.parametrize(("top", "model", "line", "words"), [
    (TOP.replace("staging:", "prod:"), MODEL, "prod:", "environment 'prod' is not defined"),
    ("", MODEL, "features:", "there is no top-level `features` section"),
    (TOP.replace(".mlops-ci/features/staging.db", "s3://user:secret@bucket/registry.db"), MODEL, "staging:",
     "without credentials"),
    (TOP.replace(".mlops-ci/features/staging.db", "../outside.db"), MODEL, "staging:", "a path inside the repository"),
    (TOP, MODEL.replace("tiny_v1", "tiny v1"), "service:", "is not a Feast object name"),
    (TOP + "  skew: {sample: 0}\n", MODEL, "skew:", "greater than or equal to 1"),
])
def test_a_mistake_is_refused_at_its_line(tmp_path, top, model, line, words):
    refused_at(config(tmp_path, top=top, model=model), line, words)


def test_data_from_the_store_is_parquet_that_mlops_ci_writes(tmp_path):
    entities = MODEL + "      entities: {train: data/train.csv, eval: data/eval_entities.parquet}\n"
    message = refused_at(config(tmp_path, model=entities), "train: data/train.csv", "is written from the feature store as Parquet")
    assert "also data.train" in message

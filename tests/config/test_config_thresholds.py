"""Threshold settings: a partial override keeps the rest of the default, null turns a level off,
and the merged value is what grades the data. Parametrised over every Threshold field found in
the models, so a new one is covered without touching this file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import BaseModel

from conftest import cli, commit, git, tiny_frame, write_tiny_data
from mlops_ci.checks.compare import compare_profiles
from mlops_ci.checks.profiler import profile_table
from mlops_ci.config import json_schema, load_config
from mlops_ci.config.checks import threshold_fields
from mlops_ci.config.schema import ChecksConfig, ColumnChecks, Threshold
from mlops_ci.errors import ConfigError, ExitCode

HEAD = """\
version: 1
environments:
  staging:
    namespace: ml-staging
models:
  churn:
    data:
      train: data/train.csv
      eval: data/eval.csv
      label: churned
"""
LEVELS = ("warn", "fail")


def discover(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Threshold]]:
    """Every field typed Threshold with a Threshold default, under ``model``: found on its own
    here, so that the library's own walk (threshold_fields) is checked against it."""
    found = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        if field.annotation is Threshold:
            assert isinstance(field.default, Threshold), f"{'.'.join(prefix + (key,))} has no Threshold default"
            found.append((prefix + (key,), field.default))
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            found += discover(field.annotation, prefix + (key,))
    return found


FIELDS = discover(ChecksConfig)
IDS = [".".join(path) for path, _ in FIELDS]
COLUMN_KEYS = list(ColumnChecks.model_fields)


def test_every_threshold_is_found():
    names = set(IDS)
    assert {"drift.psi", "drift.js", "drift.wasserstein", "label.psi", "label.js", "label.wasserstein",
            "nulls.max_increase", "nulls.max_rate", "rows.max_change"} <= names
    # the walk the warn-above-fail check uses sees the same fields
    assert [(p, d) for p, d in threshold_fields()] == FIELDS


def config_with(tmp_path: Path, checks: dict) -> Path:
    """A config whose checks section is ``checks``, written as YAML block mappings."""
    def block(node: dict, indent: int) -> str:
        out = ""
        for key, value in node.items():
            if isinstance(value, dict) and value:
                out += " " * indent + f"{key}:\n" + block(value, indent + 2)
            else:
                out += " " * indent + f"{key}: {'null' if value is None else json.dumps(value)}\n"
        return out

    path = tmp_path / ".mlops-ci.yaml"
    path.write_text(HEAD + "    checks:\n" + block(checks, 6))
    return path


def nested(path: tuple[str, ...], value) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value


def setting(checks: ChecksConfig, path: tuple[str, ...]) -> Threshold:
    node = checks
    for key in path:
        node = getattr(node, "schema_" if key == "schema" else key)
    return node


def new_value(default: Threshold, level: str) -> float:
    """A value for ``level`` other than its default that keeps warn <= fail with the other default."""
    if level == "warn":
        value = default.fail * 0.9 if default.fail is not None else 0.3
    else:
        value = (default.warn or 0) * 2 + 0.5
    assert value != getattr(default, level)
    return round(value, 6)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("path,default", FIELDS, ids=IDS)
def test_partial_override_keeps_the_other_default(tmp_path, path, default, level):
    other = "fail" if level == "warn" else "warn"
    value = new_value(default, level)
    checks = load_config(config_with(tmp_path, nested(path, {level: value}))).config.models["churn"].checks
    th = setting(checks, path)
    assert getattr(th, level) == value
    assert getattr(th, other) == getattr(default, other)
    # the same from Python: a Threshold that sets one level
    built = ChecksConfig.model_validate(nested(path, Threshold(**{level: value})))
    assert setting(built, path) == th


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("path,default", FIELDS, ids=IDS)
def test_null_turns_a_level_off(tmp_path, path, default, level):
    other = "fail" if level == "warn" else "warn"
    checks = load_config(config_with(tmp_path, nested(path, {level: None}))).config.models["churn"].checks
    th = setting(checks, path)
    assert getattr(th, level) is None
    assert getattr(th, other) == getattr(default, other)


@pytest.mark.parametrize("path,default", FIELDS, ids=IDS)
def test_untouched_and_empty_settings_keep_the_default(tmp_path, path, default):
    checks = load_config(config_with(tmp_path, nested(path, {}))).config.models["churn"].checks
    assert setting(checks, path) == default
    assert setting(ChecksConfig(), path) == default


@pytest.mark.parametrize("path,default", FIELDS, ids=IDS)
def test_warn_above_the_kept_fail_is_an_error_at_its_line(tmp_path, path, default):
    if default.fail is None:
        pytest.skip("no default fail level to be above")
    cfg = config_with(tmp_path, nested(path, {"warn": default.fail + 1}))
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    line = 1 + cfg.read_text().splitlines().index(" " * (6 + 2 * len(path)) + f"warn: {default.fail + 1}")
    assert f"{cfg}:{line}:" in str(info.value)
    assert f"models.churn.checks.{'.'.join(path)}.warn: warn {default.fail + 1} is above fail {default.fail} " \
           f"(fail {default.fail} is the default)" in str(info.value)
    assert "write fail: null to only warn" in str(info.value)


@pytest.mark.parametrize("is_label", [False, True], ids=["feature", "label"])
@pytest.mark.parametrize("key", COLUMN_KEYS)
def test_column_override_merges_with_the_model_level_threshold(key, is_label):
    checks = ChecksConfig.model_validate({"drift": {"psi": {"warn": 0.12}}, "nulls": {"max_rate": {"warn": 0.4}}})
    model_level = checks.column_thresholds("other", is_label=is_label)[key]
    assert set(checks.column_thresholds("other", is_label=is_label)) == set(COLUMN_KEYS)
    for level in LEVELS:
        other = "fail" if level == "warn" else "warn"
        value = new_value(model_level, level)
        over = ChecksConfig.model_validate({**checks.model_dump(by_alias=True),
                                            "columns": {"amount": {key: {level: value}}}})
        merged = over.column_thresholds("amount", is_label=is_label)[key]
        assert getattr(merged, level) == value and getattr(merged, other) == getattr(model_level, other)
        off = ChecksConfig.model_validate({**checks.model_dump(by_alias=True),
                                           "columns": {"amount": {key: {level: None}}}})
        merged = off.column_thresholds("amount", is_label=is_label)[key]
        assert getattr(merged, level) is None and getattr(merged, other) == getattr(model_level, other)
        # other columns keep the model-level thresholds
        assert over.column_thresholds("other", is_label=is_label)[key] == model_level


def test_column_warn_above_the_model_level_fail_is_an_error(tmp_path):
    cfg = config_with(tmp_path, {"columns": {"tenure": {"psi": {"warn": 0.3}}, "churned": {"psi": {"warn": 0.1}}}})
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    (error,) = str(info.value).splitlines()  # the label column merges with label.psi (fail 0.2): fine
    line = 1 + cfg.read_text().splitlines().index("            warn: 0.3")
    assert f"{cfg}:{line}:" in error
    assert "models.churn.checks.columns.tenure.psi.warn: warn 0.3 is above fail 0.25" in error


def test_json_schema_shows_every_threshold_default():
    schema = json_schema()
    defs = schema["$defs"]

    def prop(path: tuple[str, ...]) -> dict:
        node = defs["ChecksConfig"]
        for key in path[:-1]:
            node = defs[node["properties"][key]["$ref"].split("/")[-1]]
        return node["properties"][path[-1]]

    for path, default in FIELDS:
        p = prop(path)
        assert p["default"] == default.model_dump(), path
        assert "null turns it off" in p["description"], path
    threshold = defs["Threshold"]["properties"]
    assert all("default" not in level for level in threshold.values())  # a level left out is not null
    assert "null: never fails" in threshold["fail"]["description"]
    for key in COLUMN_KEYS:
        assert "model-level" in defs["ColumnChecks"]["properties"][key]["description"]


def frame(rows: int = 5000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"amount": rng.normal(100, 15, rows), "label": (rng.uniform(size=rows) < 0.3).astype(int)})


def grade_shift(**cfg) -> list[tuple[str, str | None, str]]:
    head = frame(seed=1)
    head["amount"] += 15  # one standard deviation: PSI and W/σ above the default fail levels
    base_p = profile_table(pa.Table.from_pandas(frame(), preserve_index=False))
    head_p = profile_table(pa.Table.from_pandas(head, preserve_index=False), reference=base_p)
    _, found = compare_profiles("train", base_p, head_p, ChecksConfig.model_validate(cfg), label="label")
    return [(f.check, f.column, f.status) for f in found]


def test_merged_thresholds_reach_the_comparison():
    only_warn = {"psi": {"warn": 0.1}, "js": {"warn": 0.1}, "wasserstein": {"warn": 0.1}}
    assert grade_shift(drift=only_warn) == [("drift", "amount", "fail")]  # the default fail levels stay
    never_fail = {key: {"fail": None} for key in only_warn}
    assert grade_shift(drift=never_fail) == [("drift", "amount", "warn")]
    # a column's partial override keeps the model-level fail; null turns it off for that column
    assert grade_shift(columns={"amount": {"psi": {"warn": 0.2}}}) == [("drift", "amount", "fail")]
    assert grade_shift(columns={"amount": never_fail}) == [("drift", "amount", "warn")]
    assert grade_shift(drift=never_fail, columns={"amount": {"psi": {"warn": 0.2}}}) == \
        [("drift", "amount", "warn")]


def test_check_command_fails_drift_above_the_default_fail(tiny_repo):
    """End to end: the tiny project's thresholds written with warn only, strong drift on a PR."""
    config = tiny_repo / ".mlops-ci.yaml"
    text = config.read_text()
    for fail in ("2.0", "0.9", "5.0"):
        text = text.replace(f", fail: {fail}}}", "}")
    assert "fail:" not in text
    config.write_text(text)
    commit(tiny_repo, "thresholds: warn only")
    git(tiny_repo, "checkout", "--quiet", "-b", "pr/shift")
    write_tiny_data(tiny_repo, seed=1, shift=1.5)
    commit(tiny_repo, "new data")
    assert tiny_frame(seed=1, shift=1.5)["x1"].mean() > 1  # far beyond the defaults' fail levels
    proc = cli(tiny_repo, "check")
    assert proc.returncode == ExitCode.GATE_FAILED, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "tiny: checks fail" in proc.stdout
    lines = proc.stdout.splitlines()
    assert any(line.strip().startswith("fail") and "column 'x1' drifted" in line for line in lines)

"""Config loading: valid files load; every bad file gives file:line:column and a fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT, cli
from mlops_ci.config import json_schema, load_config
from mlops_ci.errors import ConfigError, ExitCode

GOOD = """\
version: 1
environments:
  staging:
    namespace: ml-staging
promotion:
  on_merge: staging
models:
  churn:
    data:
      train: data/train.csv
      eval: data/eval.csv
      label: churned
    evaluation:
      gates:
        roc_auc: {min: 0.7, max_regression: 0.01}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".mlops-ci.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return str(info.value)


def test_example_configs_are_valid():
    for path in [ROOT / "examples/churn/.mlops-ci.yaml", ROOT / "tests/fixtures/tiny/.mlops-ci.yaml"]:
        loaded = load_config(path)
        assert loaded.root == path.parent.resolve()
        assert loaded.config.models


def test_defaults_fill_in(tmp_path):
    cfg = load_config(write(tmp_path, GOOD)).config
    model = cfg.models["churn"]
    from mlops_ci.backends.trainers import trainer_for

    # no trainer named: the trainers' registry gives its default, torchrun (each name is written once)
    assert model.train.backend is None and trainer_for(model.train.backend).name == "torchrun"
    assert model.train.nproc_per_node == 2
    assert model.evaluation.no_champion == "pass"
    assert cfg.champion_env("churn") == "staging"
    assert cfg.alias_for("staging") == "staging"


def test_malformed_yaml_names_line_and_column(tmp_path):
    text = GOOD.replace("      label: churned", "      label: [churned")
    msg = error_of(tmp_path, text)
    assert msg.startswith(f"{tmp_path / '.mlops-ci.yaml'}:")
    assert "malformed YAML" in msg
    line = int(msg.split(":")[1])
    assert 12 <= line <= 16


def test_unknown_key_points_at_it_and_suggests(tmp_path):
    text = GOOD.replace("      label: churned", "      label: churned\n      lable: oops")
    msg = error_of(tmp_path, text)
    assert f"{tmp_path / '.mlops-ci.yaml'}:13:7:" in msg
    assert "unknown key models.churn.data.lable" in msg
    assert "did you mean 'label'?" in msg
    assert "\n" not in msg


def test_missing_key_names_parent(tmp_path):
    text = GOOD.replace("      label: churned\n", "")
    msg = error_of(tmp_path, text)
    assert "models.churn.data.label is required" in msg
    assert ":9:5:" in msg  # the 'data:' mapping that needs it


def test_wrong_type_points_at_value(tmp_path):
    text = GOOD.replace("min: 0.7", "min: high")
    msg = error_of(tmp_path, text)
    assert ":15:19:" in msg and "models.churn.evaluation.gates.roc_auc.min" in msg and "'high'" in msg
    assert "(fix: write a number" in msg


def test_semantic_errors_point_at_the_key(tmp_path):
    text = GOOD.replace("roc_auc: {min", "auc: {min").replace("on_merge: staging", "on_merge: production")
    msg = error_of(tmp_path, text)
    lines = msg.splitlines()
    assert any(":6:3: promotion.on_merge: environment 'production' is not defined" in line for line in lines)
    assert any(":15:9: models.churn.evaluation.gates.auc: gate on metric 'auc', which is not computed" in line
               for line in lines)


@pytest.mark.parametrize("name", ["../../etc", "Churn", "a b", "x" * 41, "churn:\n  evil", "-lead"])
def test_unsafe_model_names_are_refused(tmp_path, name):
    text = GOOD.replace("  churn:\n", f"  {json.dumps(name)}:\n")
    msg = error_of(tmp_path, text)
    assert "is not a valid name" in msg


@pytest.mark.parametrize("path", ["../outside.csv", "/etc/passwd", "data/../../x.csv"])
def test_paths_must_stay_inside_the_repository(tmp_path, path):
    msg = error_of(tmp_path, GOOD.replace("data/train.csv", path))
    assert "must be a path inside the repository" in msg


def test_empty_and_non_mapping_files(tmp_path):
    assert "the file is empty" in error_of(tmp_path, "")
    assert "top level must be a mapping" in error_of(tmp_path, "- a\n- b\n")


def test_version_is_required(tmp_path):
    assert "version is required" in error_of(tmp_path, GOOD.replace("version: 1\n", ""))
    assert "version" in error_of(tmp_path, GOOD.replace("version: 1", "version: 2"))


def test_json_schema_describes_the_file():
    schema = json_schema()
    assert schema["title"] == ".mlops-ci.yaml"
    assert set(schema["required"]) == {"version", "environments", "models"}
    import jsonschema

    import yaml
    doc = yaml.safe_load(GOOD)
    jsonschema.validate(doc, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "bogus": 1}, schema)


def test_cli_config_validate_and_schema(tmp_path):
    write(tmp_path, GOOD)
    (tmp_path / "data").mkdir()
    for name in ("train.py", "data/train.csv", "data/eval.csv"):  # validate also needs what it names
        (tmp_path / name).write_text("")
    ok = cli(tmp_path, "config", "validate")
    assert ok.returncode == 0, ok.stderr
    assert "valid (1 model(s): churn" in ok.stdout
    schema = cli(tmp_path, "config", "schema")
    assert json.loads(schema.stdout)["title"] == ".mlops-ci.yaml"
    write(tmp_path, GOOD.replace("label: churned", "label: churned\n      colour: red"))
    bad = cli(tmp_path, "config", "validate")
    assert bad.returncode == ExitCode.CONFIG
    assert bad.stderr.count("\n") == 1 and "unknown key models.churn.data.colour" in bad.stderr


def test_no_config_found(tmp_path):
    proc = cli(tmp_path, "config", "validate")
    assert proc.returncode == ExitCode.CONFIG
    assert "no .mlops-ci.yaml found" in proc.stderr


def test_gate_hint_suggests_only_valid_metrics(tmp_path):
    # rmse is not a metric of binary_classification: it is refused, and never offered as the fix
    text = GOOD.replace("    evaluation:\n", "    evaluation:\n      metrics: [rmse, accuracy]\n").replace(
        "roc_auc: {min", "auc: {min")
    lines = error_of(tmp_path, text).splitlines()
    assert any("evaluation.metrics.0: unknown metric 'rmse'" in line for line in lines)
    gate = next(line for line in lines if "gate on metric 'auc'" in line)
    assert "(fix: gate one of ['accuracy'])" in gate and "rmse" not in gate
    # a metric of the task that is not listed: add it (nothing invalid offered beside it)
    text = GOOD.replace("    evaluation:\n", "    evaluation:\n      metrics: [rmse]\n")
    gate = next(line for line in error_of(tmp_path, text).splitlines() if "gate on metric 'roc_auc'" in line)
    assert gate.endswith("(fix: add 'roc_auc' to evaluation.metrics)")
    # nothing valid listed, an unknown gate: the task's metrics, with the closest first
    text = GOOD.replace("    evaluation:\n", "    evaluation:\n      metrics: [rmse]\n").replace(
        "roc_auc: {min", "roc_aux: {min")
    gate = next(line for line in error_of(tmp_path, text).splitlines() if "gate on metric 'roc_aux'" in line)
    assert "did you mean 'roc_auc'?" in gate and "rmse" not in gate.split("(fix:")[1]


@pytest.mark.parametrize("field,value", [("max_categories", "many"), ("sample_size", "lots"),
                                         ("memory_limit_mb", "big")])
def test_number_hint_is_a_valid_value(tmp_path, field, value):
    text = GOOD.replace("    evaluation:\n", f"    checks:\n      {field}: {value}\n    evaluation:\n")
    msg = error_of(tmp_path, text)
    example = int(msg.split("write a whole number such as ")[1].split(")")[0].split()[0])
    from mlops_ci.config.schema import ChecksConfig

    ChecksConfig.model_validate({field: example})  # the example given is accepted


@pytest.mark.parametrize("text, message", [
    (GOOD + "defaults: &d {epochs: 3}\n", "YAML anchors and aliases (&name, *name) are not allowed"),
    ("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n" + GOOD, "YAML anchors and aliases"),
    ("x: " + "[" * 70 + "]" * 70 + "\n" + GOOD, "nested more than 64 levels deep"),
    (GOOD.replace("namespace: ml-staging", "namespace: ml-staging\n    replicas: " + "9" * 5000),
     "not a usable config"),
])
def test_hostile_yaml_is_refused_before_anything_is_built(tmp_path, text, message):
    assert message in error_of(tmp_path, text)


@pytest.mark.parametrize("gitops, message", [
    ("remote: --upload-pack=touch /tmp/pwned", "is not a git URL or path"),
    ("remote: https://bot:hunter2@github.com/acme/gitops.git", "holds a password or token"),
    ("branch: ../../etc", "is not a branch name git accepts"),
    ("branch: -f", "is not a branch name git accepts"),
    ("branch: 'main\\nX: y'", "gitops.branch"),
])
def test_gitops_remote_and_branch_cannot_smuggle_options_or_credentials(tmp_path, gitops, message):
    err = error_of(tmp_path, GOOD + "gitops:\n  " + gitops + "\n")
    assert message in err and "hunter2" not in err


def test_anchored_regexes_match_the_whole_value(tmp_path):
    """A name with a trailing newline passes ``re.match(r"^...$")``: names are matched whole."""
    assert "is not a valid name" in error_of(tmp_path, GOOD.replace("  churn:", '  "churn\\n":'))


@pytest.mark.parametrize("argo, message", [
    ("server_url: https://argo:Pw0rd-xyz@argo.example.com", "'https://argo.example.com' holds credentials"),
    ("server_url: https://argo.example.com\n        repo: ssh://git:Pw0rd-xyz@github.com/acme/m.git",
     "'ssh://github.com/acme/m.git' holds a password or token"),
    ("server_url: https://argo.example.com\n        repo: https://x-access-token:Pw0rd-xyz@github.com/acme/m.git",
     "'https://github.com/acme/m.git' holds a password or token"),
])
def test_a_credential_in_a_url_is_refused_without_repeating_it(tmp_path, argo, message):
    image = "ghcr.io/acme/train@sha256:" + "0" * 64
    text = GOOD + f"    train:\n      backend: argo\n      argo:\n        image: {image}\n        {argo}\n"
    err = error_of(tmp_path, text)
    assert message in err and "Pw0rd" not in err


@pytest.mark.parametrize("serving, suggestion", [
    ("      kind: deployment\n      image: ghcr.io/acme/s@sha256:" + "0" * 64 + "\n      prot: 8080\n", "'port'"),
    ("      minreplicas: 2\n", "'min_replicas'"),
    ("      kind: inferenceservice\n      runtme: kserve-mlserver\n", "'runtime'"),
])
def test_a_typo_in_the_serving_section_is_matched_against_its_kind(tmp_path, serving, suggestion):
    err = error_of(tmp_path, GOOD + "    serving:\n" + serving)
    assert f"(fix: did you mean {suggestion}?)" in err

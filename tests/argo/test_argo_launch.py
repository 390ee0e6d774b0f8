"""train.args and train.env on Argo: the Workflow carries them as two JSON parameters, both
templates hand them to the pods as environment variables, and the launcher each torchrun worker
runs (mlops_ci/argo/launch.py) turns them into the script's argv and environment, without a
shell. The values here are the awkward ones: quotes, braces Argo would substitute, `$(VAR)`
Kubernetes would expand, backquotes, line breaks and non-ASCII text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from test_argo_render import IMAGE, JOBSET, SHA, TORCHRUN, _substitute, _template, _values
from manifest_support import schema_errors

from mlops_ci.argo import build_workflow
from mlops_ci.argo.launch import ARGS_ENV, ENV_ENV, LaunchError, command
from mlops_ci.config.schema import Config
from mlops_ci.errors import ConfigError

ARGS = ["--epochs", "3", "it's {{workflow.name}}", "$(HOME) and ${HOME}", "`id`", "two\nlines", "café", ""]
ENV = {"TINY_NOTE": "x y 'z' \"q\" {{pod.name}} $(PATH)", "OMP_NUM_THREADS": "4", "TOKENIZERS_PARALLELISM": "false"}


def config(args: list[str] | None = None, env: dict[str, str] | None = None) -> Config:
    train: dict[str, Any] = {"backend": "argo", "argo": {"image": IMAGE, "server_url": "https://argo.example.com",
                                                         "repo": "https://github.com/acme/churn.git",
                                                         "checkpoint_uri": "s3://ckpt/mlops-ci"}}
    if args is not None:
        train["args"] = args
    if env is not None:
        train["env"] = env
    return Config.model_validate({
        "version": 1, "environments": {"staging": {"namespace": "churn-staging"}},
        "models": {"churn": {"data": {"train": "a.csv", "eval": "b.csv", "label": "y"}, "train": train}}})


def params(wf: dict) -> dict[str, str]:
    return {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}


def build(cfg: Config, nodes: int = 1) -> dict:
    return build_workflow(cfg, "churn", repo=None, head_sha=SHA, pr=7, repository="acme/churn", nodes=nodes)


def argo_substitute(template: dict, values: dict[str, str]) -> dict:
    """What Argo does: marshal the template to JSON, replace each {{tag}} with the value escaped
    as the inside of a JSON string (strconv.Quote without its quotes), unmarshal."""
    text = json.dumps(template)
    for tag, value in values.items():
        text = text.replace("{{" + tag + "}}", json.dumps(value, ensure_ascii=False)[1:-1])
    return json.loads(text)


def test_the_workflow_carries_args_and_env_as_inert_json() -> None:
    wf = build(config(ARGS, ENV))
    assert not schema_errors(wf), schema_errors(wf)
    p = params(wf)
    assert json.loads(p["args"]) == ARGS and json.loads(p["env"]) == ENV
    for text in (p["args"], p["env"]):
        assert text.isascii() and not set(text) & set("'$`\n") and "{{" not in text and "}}" not in text
    # the other parameters are unchanged, and nothing is sent when the config has neither
    assert "args" not in params(build(config())) and "env" not in params(build(config([], {})))


@pytest.mark.parametrize("nodes", [1, 2])
def test_both_templates_hand_them_to_the_launcher_intact(nodes: int) -> None:
    wf = build(config(ARGS, ENV), nodes=nodes)
    p = params(wf)
    if nodes == 1:
        assert wf["spec"]["workflowTemplateRef"]["name"] == TORCHRUN
        train = next(t for t in _template(TORCHRUN)["spec"]["templates"] if t["name"] == "train")
        container = argo_substitute(train, {f"workflow.parameters.{k}": v for k, v in p.items()})["container"]
    else:
        # the JobSet manifest is text: Argo substitutes into it, then it is parsed as YAML
        assert wf["spec"]["workflowTemplateRef"]["name"] == JOBSET
        manifest = next(t for t in _template(JOBSET)["spec"]["templates"] if t["name"] == "jobset")
        values = _values() | {f"workflow.parameters.{k}": v for k, v in p.items()}
        jobset = YAML(typ="safe").load(_substitute(manifest["resource"]["manifest"], values))
        assert not schema_errors(jobset)
        (container,) = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[ARGS_ENV] == p["args"] and env[ENV_ENV] == p["env"]
    # the worker's argv after torchrun: -m mlops_ci.argo.launch <script>
    launch = container["args"].index("mlops_ci.argo.launch")
    script_argv = container["args"][launch + 1:]
    argv, run_env = command(script_argv, {ARGS_ENV: env[ARGS_ENV], ENV_ENV: env[ENV_ENV], "KEEP": "1"})
    assert argv == [sys.executable, "-u", "train.py", *ARGS]
    assert run_env == {"KEEP": "1", **ENV}


def test_the_launcher_execs_the_script_with_the_arguments_and_environment(tmp_path: Path) -> None:
    script = tmp_path / "show.py"
    script.write_text("import json, os, sys\n"
                      "print(json.dumps({'argv': sys.argv[1:], 'note': os.environ.get('TINY_NOTE'), 'pid': os.getpid(),"
                      " 'leftover': [k for k in os.environ if k.startswith('MLOPS_CI_TRAIN_')]}))\n")
    env = {**os.environ, ARGS_ENV: params(build(config(ARGS, ENV)))["args"],
           ENV_ENV: params(build(config(ARGS, ENV)))["env"]}
    code = "import os, sys; print(os.getpid(), flush=True); from mlops_ci.argo.launch import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, str(script), "--first"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    pid, shown = proc.stdout.splitlines()
    out = json.loads(shown)
    assert out["argv"] == ["--first", *ARGS] and out["note"] == ENV["TINY_NOTE"] and out["leftover"] == []
    assert out["pid"] == int(pid), "the script replaces the launcher: torchrun's worker PID is the script's"


@pytest.mark.parametrize(("variables", "words"), [
    ({ARGS_ENV: "--epochs 3"}, "not JSON"),
    ({ARGS_ENV: '{"a": "b"}'}, "list of strings"),
    ({ARGS_ENV: "[3]"}, "list of strings"),
    ({ENV_ENV: '["A=b"]'}, "object of strings"),
    ({ENV_ENV: '{"A": 1}'}, "object of strings"),
])
def test_the_launcher_refuses_what_mlops_ci_never_sends(variables: dict[str, str], words: str) -> None:
    with pytest.raises(LaunchError, match=words):
        command(["train.py"], variables)
    with pytest.raises(LaunchError, match="usage"):
        command(["-c"], {})


@pytest.mark.parametrize(("key", "words"), [
    ("HF_TOKEN", "credential"), ("AWS_SECRET_ACCESS_KEY", "credential"), ("AWS_ACCESS_KEY_ID", "credential"),
    ("DB_PASSWORD", "credential"), ("WANDB_API_KEY", "credential"), ("GITHUB_AUTH", "credential"),
    ("MLOPS_CI_RESULT", "set by the Argo templates or by torchrun"), ("RANK", "set by"), ("MLFLOW_RUN_ID", "set by"),
    ("TORCHELASTIC_RUN_ID", "set by"), ("1BAD", "not an environment variable name"),
    ("A-B", "not an environment variable name"),
])
def test_env_for_the_pods_refuses_credentials_and_what_the_templates_set(key: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as err:
        build(config(env={key: "x"}))
    assert "models.churn.train.env" in str(err.value)
    if words == "credential":
        assert "mlops-ci-trainer" in (err.value.hint or "")

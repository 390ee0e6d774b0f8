"""Paths the config names must be there (exit 3, file:line:column, before anything runs): the
training script in the work tree; the data in the work tree or tracked by DVC there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli, commit, dvc, git
from mlops_ci.config import load_config
from mlops_ci.config.paths import dvc_tracked, path_problems
from mlops_ci.errors import ConfigError, ExitCode

CONFIG = """\
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
    train:
      script: train.py
"""


def project(tmp_path: Path, files=("train.py", "data/train.csv", "data/eval.csv"), text: str = CONFIG) -> Path:
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    (tmp_path / ".mlops-ci.yaml").write_text(text)
    return tmp_path


def problems_of(root: Path) -> list[tuple[str, str, str | None]]:
    loaded = load_config(root / ".mlops-ci.yaml")
    return [(".".join(map(str, p.loc)), p.message, p.hint) for p in path_problems(loaded.config, loaded.root)]


def test_everything_present_is_fine(tmp_path):
    assert problems_of(project(tmp_path)) == []
    load_config(tmp_path / ".mlops-ci.yaml", check_paths=True)


def test_missing_script_and_data_name_the_setting_and_a_valid_fix(tmp_path):
    root = project(tmp_path, text=CONFIG.replace("script: train.py", "script: trian.py")
                   .replace("data/eval.csv", "data/evl.csv"))
    (root / "data/eval.py").write_text("")  # close to the typo, but not data that exists as data...
    found = problems_of(root)
    assert [loc for loc, _, _ in found] == ["models.churn.train.script", "models.churn.data.eval"]
    assert found[0][1] == "training script 'trian.py' not found" and found[0][2] == "did you mean 'train.py'?"
    assert "'data/evl.csv' is not in the work tree and not tracked by DVC" in found[1][1]
    assert found[1][2] == "did you mean 'data/eval.csv'?"


def test_a_suggestion_always_passes_the_check(tmp_path):
    # a folder named like the script is no script; nothing close: how to fix it
    root = project(tmp_path, files=("data/train.csv", "data/eval.csv", "train.py.d/x"),
                   text=CONFIG.replace("script: train.py", "script: train.py"))
    ((_, message, hint),) = problems_of(root)
    assert message == "training script 'train.py' not found"
    assert hint == "correct the path (relative to the folder of .mlops-ci.yaml), or add the script"
    root = project(tmp_path / "b", files=("train.py",),
                   text=CONFIG.replace("data/train.csv", "data/train.parquet"))
    hints = [hint for _, _, hint in problems_of(root)]
    assert hints == ["correct the path (relative to the folder of .mlops-ci.yaml), or add the data and track it: "
                     "`dvc add data/train.parquet`",
                     "correct the path (relative to the folder of .mlops-ci.yaml), or add the data and track it: "
                     "`dvc add data/eval.csv`"]


def test_a_folder_is_not_data(tmp_path):
    root = project(tmp_path, files=("train.py", "data/train.csv", "data/eval/part-0.csv"))
    found = problems_of(root)
    assert found == [("models.churn.data.eval", "'data/eval.csv' is not in the work tree and not tracked by DVC "
                      "(data/eval.csv.dvc, or an output in dvc.yaml / dvc.lock)", "correct the path (relative to "
                      "the folder of .mlops-ci.yaml), or add the data and track it: `dvc add data/eval.csv`")]
    root = project(tmp_path / "b", text=CONFIG.replace("eval: data/eval.csv", "eval: data"))
    ((loc, message, _),) = problems_of(root)
    assert loc == "models.churn.data.eval" and message == "'data' is a folder: name one CSV, JSON-lines or Parquet file"


def test_default_script_is_named_as_the_default(tmp_path):
    root = project(tmp_path, files=("data/train.csv", "data/eval.csv"), text=CONFIG.replace(
        "    train:\n      script: train.py\n", ""))
    ((loc, message, _),) = problems_of(root)
    assert loc == "models.churn.train.script" and message == "training script 'train.py' (the default) not found"
    with pytest.raises(ConfigError) as info:
        load_config(root / ".mlops-ci.yaml", check_paths=True)
    assert f"{root / '.mlops-ci.yaml'}:6:3: models.churn.train.script" in str(info.value)  # the model's key


TRACKING = {
    "dvc file": {"data/train.csv.dvc": "outs:\n- md5: abc\n  path: train.csv\n"},
    "folder dvc file": {"data.dvc": "outs:\n- md5: abc.dir\n  path: data\n"},
    "dvc.yaml": {"dvc.yaml": "stages:\n  prepare:\n    cmd: python prep.py\n    outs:\n    - data/train.csv\n"},
    "dvc.yaml with options": {"dvc.yaml": "stages:\n  prep:\n    cmd: x\n    outs:\n    - data/train.csv:\n"
                                          "        cache: false\n"},
    "dvc.lock in its folder": {"data/dvc.lock": "schema: '2.0'\nstages:\n  prep:\n    cmd: x\n    outs:\n"
                                                "    - path: train.csv\n      md5: abc\n"},
    "dvc.lock above the project": {"../dvc.lock": "schema: '2.0'\nstages:\n  prep:\n    cmd: x\n    outs:\n"
                                                  "    - path: ml/data/train.csv\n      md5: abc\n"},
}


@pytest.mark.parametrize("tracking", list(TRACKING.values()), ids=list(TRACKING))
def test_data_tracked_by_dvc_need_not_be_pulled(tmp_path, tracking):
    (tmp_path / ".dvc").mkdir()  # the DVC repository's top, above the project folder ml/
    root = project(tmp_path / "ml", files=("train.py", "data/eval.csv"))
    assert [loc for loc, _, _ in problems_of(root)] == ["models.churn.data.train"]
    for name, text in tracking.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert problems_of(root) == []


def test_dvc_files_that_track_something_else_do_not_count(tmp_path):
    root = project(tmp_path / "repo", files=("train.py", "data/eval.csv"))
    (root / ".git").mkdir()  # the repository's top
    (root / "data/train.csv.dvc").write_text("outs:\n- md5: abc\n  path: other.csv\n")
    (root / "dvc.yaml").write_text("stages:\n  s:\n    cmd: x\n    outs:\n    - data/train\n")
    (root / "dvc.lock").write_text("{not yaml")
    # a dvc.yaml above the repository's top is not the project's
    (tmp_path / "dvc.yaml").write_text("stages:\n  s:\n    cmd: x\n    outs:\n    - repo/data/train.csv\n")
    assert not dvc_tracked(root / "data/train.csv", root)
    assert [loc for loc, _, _ in problems_of(root)] == ["models.churn.data.train"]


def test_real_dvc_add_then_data_not_pulled(tiny_repo):
    dvc(tiny_repo, "init", "--quiet")
    git(tiny_repo, "rm", "--quiet", "--cached", "data/train.csv", "data/eval.csv")
    dvc(tiny_repo, "add", "--quiet", "data/train.csv", "data/eval.csv")
    commit(tiny_repo, "data under DVC")
    for name in ("train.csv", "eval.csv"):
        (tiny_repo / "data" / name).unlink()  # as in CI before `dvc pull`
    proc = cli(tiny_repo, "config", "validate")
    assert proc.returncode == 0, proc.stderr


def test_git_tracked_data_deleted_from_the_work_tree_is_a_data_error_later(tiny_repo):
    (tiny_repo / "data/eval.csv").unlink()
    assert cli(tiny_repo, "config", "validate").returncode == 0  # the path is right; the file is missing


def mistype(repo: Path, old: str, new: str) -> int:
    config = repo / ".mlops-ci.yaml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))
    commit(repo, f"typo: {new}")
    return 1 + next(i for i, line in enumerate(config.read_text().splitlines()) if new in line)


@pytest.mark.parametrize("setting,old,new,message", [
    ("models.tiny.train.script", "script: train.py", "script: trian.py", "training script 'trian.py' not found"),
    ("models.tiny.data.train", "train: data/train.csv", "train: data/trian.csv",
     "'data/trian.csv' is not in the work tree and not tracked by DVC"),
], ids=["script", "data"])
def test_commands_that_run_stages_refuse_a_missing_path(tiny_repo, setting, old, new, message):
    line = mistype(tiny_repo, old, new)
    config = tiny_repo / ".mlops-ci.yaml"
    suggestion = old.split(": ")[1]
    for args in (["config", "validate"], ["run", "--dry-run"], ["run"], ["train", "--dry-run"], ["check"],
                 ["evaluate", "--dry-run"]):
        proc = cli(tiny_repo, *args)
        assert proc.returncode == ExitCode.CONFIG, (args, proc.stderr[-2000:])
        assert f"{config}:{line}:" in proc.stderr and f"{setting}: {message}" in proc.stderr, (args, proc.stderr)
        assert f"(fix: did you mean {suggestion!r}?)" in proc.stderr
    # nothing ran (no MLflow database, no training); `run` alone leaves its head a record that says why
    assert sorted(p.name for p in (tiny_repo / ".mlops-ci").iterdir()) == ["record.json", "report.md"]
    failure = json.loads((tiny_repo / ".mlops-ci" / "record.json").read_text())["failure"]
    assert failure["stage"] == "config" and message in failure["message"]
    # commands that do not run stages do not need the files
    assert cli(tiny_repo, "context").returncode == 0

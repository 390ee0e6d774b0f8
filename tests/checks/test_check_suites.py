"""deepchecks suites inside `mlops-ci check`: the real worker environment gates the PR."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, cli, commit, git, tiny_frame

SHARED_CACHE = ROOT / ".cache" / "mlops-ci-test"  # the environment is built once and reused


@pytest.mark.slow
def test_train_test_validation_fails_the_check_on_a_shifted_eval_set(tiny_repo, monkeypatch):
    monkeypatch.setenv("MLOPS_CI_CACHE_DIR", str(SHARED_CACHE))
    repo = tiny_repo
    config_path = repo / ".mlops-ci.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["models"]["tiny"]["checks"]["suites"] = {
        "train_test_validation": {"enabled": True, "sample_rows": 1000},
        "data_integrity": {"enabled": True, "sample_rows": 1000, "on_error": "warn"},
    }
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    commit(repo, "enable deepchecks suites")

    git(repo, "checkout", "--quiet", "-b", "pr/eval-shift")
    shifted = tiny_frame(seed=2, shift=2.5)  # the eval set no longer looks like the train set
    shifted.iloc[: len(shifted) // 4].to_csv(repo / "data" / "eval.csv", index=False)
    commit(repo, "new eval data")

    proc = cli(repo, "check", "--junit", "junit.xml")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    record = json.loads((repo / ".mlops-ci" / "record.json").read_text())
    suites = {s["suite"]: s for s in record["models"]["tiny"]["results"]["check"]["suites"]}
    ttv = suites["train_test_validation"]
    assert ttv["status"] == "fail" and ttv["sampled_rows"] == {"train": 450, "test": 150}
    failed = {c["name"] for c in ttv["checks"] if c["outcome"] == "fail"}
    assert "FeatureDrift" in failed, failed
    assert Path(ttv["html_path"]).is_file() and Path(ttv["html_path"]).stat().st_size > 10_000
    assert suites["data_integrity"]["status"] in ("pass", "warn")
    messages = [f["message"] for f in record["models"]["tiny"]["results"]["check"]["findings"] if f["check"] == "suite"]
    assert any(m.startswith("deepchecks Feature Drift") for m in messages), messages
    assert "fail" in proc.stdout and "deepchecks Feature Drift" in proc.stdout

    cases = {c.get("name"): c for c in ET.parse(repo / "junit.xml").getroot().iter("testcase")}
    assert cases["Feature Drift"].find("failure") is not None

"""A registered version's reference profiles: stored with its run at registration (through
`mlops-ci run`), in the profile format the pull request's checks cache, mergeable."""

from __future__ import annotations

import pytest

from mlops_ci import registry
from mlops_ci.checks.profile import TableProfile, merge
from mlops_ci.stages.reference import REFERENCE_FILE, load_reference

pytestmark = pytest.mark.slow


def test_registration_stores_the_data_and_prediction_profiles(champion_repo):
    from mlops_ci.config import load_config
    from mlops_ci.pipeline import default_backends
    from mlops_ci.workspace import Workspace

    tracking = default_backends(Workspace.from_config(load_config(champion_repo / ".mlops-ci.yaml"))).tracking
    v1 = tracking.version_by_alias("tiny", "staging")  # registered by `mlops-ci run` in the session's fixture
    assert v1.tags[registry.REFERENCE] == REFERENCE_FILE
    doc = load_reference(tracking, v1.run_id)
    assert doc["model"] == "tiny" and doc["label"] == "label" and set(doc["profiles"]) == {"train", "eval",
                                                                                           "predictions"}
    assert doc["data"]["train"].startswith("git:") and doc["data"]["eval"].startswith("git:")
    train, ev, predictions = (TableProfile.from_json(doc["profiles"][k]) for k in ("train", "eval", "predictions"))
    assert (train.rows, ev.rows, predictions.rows) == (450, 150, 150)
    assert {"x1", "x2", "color", "label"} <= set(train.columns)
    score = predictions.columns["prediction"]
    assert score.kind == "numeric" and 0 <= score.minimum <= score.maximum <= 1 and sum(score.hist) == 150
    both = merge(train, ev, sample_size=doc["options"]["sample_size"], max_categories=doc["options"]["max_categories"])
    assert both.rows == 600 and both.columns["x1"].rows == 600  # profiles merge exactly

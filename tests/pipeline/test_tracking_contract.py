"""The contract of the tracking role (mlops_ci/backends/tracking/base.py): one suite every
``Tracking`` backend passes, as dvc's remote tests do for its remotes.

Parametrised over the deployments mlops-ci supports:

- ``embedded``: MLflow on SQLite in the test's folder (what a repository gets with no setup);
- ``server``: a real ``mlflow server --app-name basic-auth`` (tests/servers/mlflow_server.py, one
  per session), with the credentials in ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``
  as a workflow's job env sets them from secrets, and the URI given to the backend only (not in
  the environment), as ``tracking.uri`` in `.mlops-ci.yaml` gives it.

Each test names what it creates uniquely (the server is shared). Models are the tiny fixture's
pyfunc model, saved once and uploaded as a logged model with the backend's own client.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
from conftest import FIXTURES
from servers.mlflow_server import free_port

from mlops_ci import registry
from mlops_ci.backends.tracking import TRACKING, Tracking
from mlops_ci.backends.tracking.mlflow import MlflowTracking
from mlops_ci.errors import BackendError, ExitCode, NotFound

pytest_plugins = ["conftest_mlflow"]

BACKENDS = ("embedded", "server")
CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


@pytest.fixture(params=BACKENDS)
def tracking(request, tmp_path, monkeypatch) -> Tracking:
    if request.param == "embedded":
        return TRACKING["mlflow"](uri=f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}",
                                  artifact_root=(tmp_path / "mlartifacts").as_uri())
    server = request.getfixturevalue("mlflow_server")  # started only when a server test runs
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", server.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", server.password)
    return TRACKING["mlflow"](uri=server.uri)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """The tiny fixture's pyfunc model (models from code + a weights file), saved once."""
    import mlflow.pyfunc

    root = tmp_path_factory.mktemp("tiny-model")
    weights = root / "weights.json"
    weights.write_text(json.dumps({"features": ["x1", "x2"], "w": [1.5, -1.0], "b": 0.0, "broken": False}))
    path = root / "model"
    mlflow.pyfunc.save_model(str(path), python_model=str(FIXTURES / "tiny" / "tiny_model.py"),
                             artifacts={"weights": str(weights)}, pip_requirements=[])
    return path


def unique(kind: str) -> str:
    return f"contract-{kind}-{uuid.uuid4().hex[:10]}"


def new_run(tracking: Tracking, *, tags: dict[str, str] | None = None, experiment: str | None = None) -> tuple[str, str]:
    experiment_id = tracking.experiment(experiment or unique("exp"))
    return experiment_id, tracking.start_run(experiment_id, run_name="r", tags=tags or {})


def log_model(tracking: MlflowTracking, model_dir: Path, experiment_id: str, run_id: str) -> str:
    """A logged model of ``run_id`` (what ``mlflow.pyfunc.log_model`` makes), through the backend's
    own client: ``models:/m-...``."""
    client = tracking.client
    logged = client.create_logged_model(experiment_id, name="model", source_run_id=run_id)
    client.log_model_artifacts(logged.model_id, str(model_dir))
    client.finalize_logged_model(logged.model_id, "READY")
    return f"models:/{logged.model_id}"


@pytest.fixture
def model_uri(tracking, model_dir) -> tuple[str, str, str]:
    """(experiment id, run id, model URI) of a finished run that logged the tiny model."""
    experiment_id, run_id = new_run(tracking)
    uri = log_model(tracking, model_dir, experiment_id, run_id)
    tracking.end_run(run_id, "FINISHED")
    return experiment_id, run_id, uri


def versions(found) -> list[str]:
    return [v.version for v in found]


# -- runs -----------------------------------------------------------------------------------------

def test_experiment_get_or_create_is_idempotent(tracking):
    name = unique("exp")
    first = tracking.experiment(name)
    assert tracking.experiment(name) == first
    assert tracking.experiment(unique("exp")) != first


def test_a_run_starts_ends_and_keeps_its_tags(tracking):
    experiment_id, run_id = new_run(tracking, tags={"mlops_ci.pr": "7", "team": "ml"})
    run = tracking.get_run(run_id)
    assert (run.run_id, run.experiment_id, run.status) == (run_id, experiment_id, "RUNNING")
    assert run.tags["mlops_ci.pr"] == "7" and run.tags["team"] == "ml"

    tracking.set_run_tags(run_id, {"team": "platform", "mlops_ci.evaluation": "pass"})
    tracking.end_run(run_id, "FINISHED")
    run = tracking.get_run(run_id)
    assert run.status == "FINISHED"
    assert {k: run.tags[k] for k in ("mlops_ci.pr", "team", "mlops_ci.evaluation")} == {
        "mlops_ci.pr": "7", "team": "platform", "mlops_ci.evaluation": "pass"}
    url = tracking.run_url(run_id, experiment_id)
    assert url is None if tracking.uri.startswith("sqlite:") else url == (
        f"{tracking.uri}/#/experiments/{experiment_id}/runs/{run_id}")


def test_a_run_keeps_a_text_artifact(tracking):
    _, run_id = new_run(tracking, tags={})
    assert tracking.load_text(run_id, "mlops_ci/reference.json") is None
    tracking.log_text(run_id, '{"schema": 1, "name": "ü"}', "mlops_ci/reference.json")
    assert tracking.load_text(run_id, "mlops_ci/reference.json") == '{"schema": 1, "name": "ü"}'


def test_search_runs_finds_the_runs_with_every_tag_newest_first(tracking):
    experiment = unique("exp")
    fp = "sha256:" + "ab" * 32
    made = []
    for tags in ({"mlops_ci.fingerprint": fp, "k": "1"},   # match
                 {"mlops_ci.fingerprint": fp},             # lacks k
                 {"mlops_ci.fingerprint": fp, "k": "10"},  # k differs (not a prefix match)
                 {"mlops_ci.fingerprint": fp, "k": "1"}):  # match, newer
        made.append(new_run(tracking, tags=tags, experiment=experiment)[1])
        time.sleep(0.01)  # distinct start times: "newest first" must be decidable
    tracking.end_run(made[3], "FINISHED")

    found = tracking.search_runs(experiment, {"mlops_ci.fingerprint": fp, "k": "1"})
    assert [r.run_id for r in found] == [made[3], made[0]]
    assert found[0].tags["k"] == "1" and found[0].status == "FINISHED"
    assert [r.run_id for r in tracking.search_runs(experiment, {"mlops_ci.fingerprint": fp})] == made[::-1]
    assert [r.run_id for r in tracking.search_runs(experiment, {"k": "1"}, status="FINISHED")] == [made[3]]
    assert [r.run_id for r in tracking.search_runs(experiment, {"k": "1"}, status="RUNNING")] == [made[0]]
    assert tracking.search_runs(experiment, {"k": "2"}) == []
    assert tracking.search_runs(unique("never-created"), {"k": "1"}) == []


def test_metric_history_gives_one_dict_per_step(tracking):
    _, run_id = new_run(tracking)
    client = tracking.client
    for step, (loss, acc) in enumerate([(0.9, 0.5), (0.6, 0.7), (0.4, 0.8)]):
        client.log_metric(run_id, "loss", loss, step=step)
        client.log_metric(run_id, "acc", acc, step=step)
    client.log_metric(run_id, "lr", 0.1, step=2)  # logged at one step only
    tracking.end_run(run_id, "FINISHED")
    assert tracking.metric_history(run_id) == [
        {"step": 0.0, "acc": 0.5, "loss": 0.9},
        {"step": 1.0, "acc": 0.7, "loss": 0.6},
        {"step": 2.0, "acc": 0.8, "loss": 0.4, "lr": 0.1},
    ]
    _, empty = new_run(tracking)
    assert tracking.metric_history(empty) == []


# -- models and the registry -----------------------------------------------------------------------

def test_a_logged_model_is_registered_and_resolved(tracking, model_uri, model_dir):
    experiment_id, run_id, uri = model_uri
    assert tracking.logged_model_uri(run_id, experiment_id) == uri
    _, bare = new_run(tracking)
    assert tracking.logged_model_uri(bare, experiment_id) is None

    name = unique("model")
    mv = tracking.register(name, uri, run_id=run_id, tags={"mlops_ci.origin": "trusted"})
    assert (mv.name, mv.version, mv.run_id, mv.tags, mv.aliases) == (
        name, "1", run_id, {"mlops_ci.origin": "trusted"}, ())
    location = tracking.artifact_location(uri)
    assert mv.source == location == mv.artifact_uri  # the fixed location, not an indirection
    assert tracking.artifact_location(f"models:/{name}/1") == location
    assert tracking.get_version(name, "1") == mv

    digest = tracking.digest(mv.artifact_uri)
    assert digest.startswith("sha256:") and len(digest) == 7 + 64
    assert tracking.digest(mv.artifact_uri) == digest  # stable
    # the same files have the same digest wherever they are stored
    assert MlflowTracking(uri="sqlite:///unused.db").digest(str(model_dir)) == digest


@pytest.mark.parametrize("tracking", ["embedded", "server"], indirect=True)
def test_a_registered_version_predicts(tracking, model_uri):
    """Also against a server given only to the backend (tracking.uri), not as MLFLOW_TRACKING_URI:
    its mlflow-artifacts:/ locations are downloaded through that server."""
    _, run_id, uri = model_uri
    name = unique("model")
    tracking.register(name, uri, run_id=run_id, tags={})
    frame = pd.DataFrame({"x1": [2.0, -2.0], "x2": [0.0, 0.0]})
    for where in (f"models:/{name}/1", uri):
        predictions = tracking.predict(where, frame)
        assert predictions.shape == (2,) and predictions[0] > 0.9 and predictions[1] < 0.1
    # what a serving runtime loads: the version's files in a local folder
    local = Path(tracking.local_copy(tracking.get_version(name, "1").artifact_uri))
    assert (local / "MLmodel").is_file() and (local / "requirements.txt").is_file()


def test_search_versions_matches_tags_exactly_newest_first(tracking, model_uri):
    _, run_id, uri = model_uri
    name = unique("model")
    tags = [{"mlops_ci.pr": "1"}, {"mlops_ci.pr": "1", "mlops_ci.origin": "pull_request"},
            {"mlops_ci.pr": "10"}, {}]
    for t in tags:
        tracking.register(name, uri, run_id=run_id, tags=t)
    assert versions(tracking.search_versions(name, {"mlops_ci.pr": "1"})) == ["2", "1"]
    assert versions(tracking.search_versions(name, {"mlops_ci.pr": "1", "mlops_ci.origin": "pull_request"})) == ["2"]
    assert versions(tracking.search_versions(name, {})) == ["4", "3", "2", "1"]
    assert versions(tracking.search_versions(name, {}, limit=2)) == ["4", "3"]
    assert tracking.search_versions(name, {"mlops_ci.pr": "2"}) == []
    assert tracking.search_versions(unique("no-such-model"), {}) == []
    assert tracking.search_versions(f"{name}x", {}) == []  # a name is not a prefix


def test_register_once_is_idempotent_per_fingerprint(tracking, model_uri):
    _, run_id, uri = model_uri
    name = unique("model")
    fp = "sha256:" + uuid.uuid4().hex * 2
    tags = {registry.FINGERPRINT: fp, registry.ORIGIN: "pull_request", registry.PR: "5"}
    first, created = registry.register_once(tracking, name, uri, run_id=run_id, tags=tags)
    again, created_again = registry.register_once(tracking, name, uri, run_id=run_id, tags=tags)
    assert (created, created_again) == (True, False) and again == first
    assert versions(tracking.search_versions(name, {registry.FINGERPRINT: fp})) == [first.version] == ["1"]
    match = registry.find_by_fingerprint(tracking, name, fp)
    assert match.version == first and match.run_id == run_id and match.model_uri == f"models:/{name}/1"

    # without a fingerprint, idempotent per training run
    other, made = registry.register_once(tracking, name, uri, run_id=run_id, tags={registry.TRAINING_RUN: run_id})
    assert made and other.version == "2"
    assert registry.register_once(tracking, name, uri, run_id=run_id,
                                  tags={registry.TRAINING_RUN: run_id})[0].version == "2"


def test_a_finished_run_is_found_by_fingerprint_before_it_is_registered(tracking, model_dir):
    model = unique("m")
    fp = "sha256:" + uuid.uuid4().hex * 2
    experiment_id, run_id = new_run(tracking, tags={registry.FINGERPRINT: fp},
                                    experiment=registry.experiment_name(model))
    uri = log_model(tracking, model_dir, experiment_id, run_id)
    assert registry.find_by_fingerprint(tracking, model, fp) is None  # still running
    tracking.end_run(run_id, "FINISHED")
    match = registry.find_by_fingerprint(tracking, model, fp)
    assert (match.run_id, match.model_uri, match.version) == (run_id, uri, None)


def test_get_version_of_an_unknown_version_raises_not_found(tracking, model_uri):
    _, run_id, uri = model_uri
    name = unique("model")
    tracking.register(name, uri, run_id=run_id, tags={})
    for missing_name, missing_version in ((name, "2"), (unique("no-such-model"), "1")):
        with pytest.raises(NotFound) as caught:
            tracking.get_version(missing_name, missing_version)
        assert caught.value.exit_code == ExitCode.INPUT == 4
        assert f"{missing_name} v{missing_version} does not exist" in str(caught.value)


def test_aliases_and_version_tags(tracking, model_uri):
    _, run_id, uri = model_uri
    name = unique("model")
    for _ in range(2):
        tracking.register(name, uri, run_id=run_id, tags={})
    assert tracking.version_by_alias(name, "staging") is None
    assert tracking.version_by_alias(unique("no-such-model"), "staging") is None

    tracking.set_alias(name, "staging", "1")
    assert tracking.version_by_alias(name, "staging").version == "1"
    assert tracking.get_version(name, "1").aliases == ("staging",)
    tracking.set_alias(name, "staging", "2")  # an alias moves
    held = tracking.version_by_alias(name, "staging")
    assert held.version == "2" and held.aliases == ("staging",) and tracking.get_version(name, "1").aliases == ()

    tracking.set_version_tags(name, "2", {"mlops_ci.deployed.staging": "c" * 40, "mlops_ci.digest": "sha256:x"})
    assert tracking.get_version(name, "2").tags == {"mlops_ci.deployed.staging": "c" * 40,
                                                    "mlops_ci.digest": "sha256:x"}


# -- reaching the server ------------------------------------------------------------------------------

def test_ping_passes_with_credentials(tracking):
    tracking.ping()


def test_ping_names_refused_credentials(request, monkeypatch):
    server = request.getfixturevalue("mlflow_server")
    for key in CREDENTIALS:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(BackendError) as caught:
        MlflowTracking(uri=server.uri).ping()
    assert f"MLflow at {server.uri} refused the credentials (HTTP 401)" in str(caught.value)
    assert caught.value.exit_code == ExitCode.BACKEND and "MLFLOW_TRACKING_PASSWORD" in str(caught.value)

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", server.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", server.password + "-wrong")
    with pytest.raises(BackendError, match="refused the credentials"):
        MlflowTracking(uri=server.uri).ping()
    # the token is never shown, whatever the error
    assert server.password not in str(caught.value)


def test_ping_says_a_closed_port_does_not_answer():
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackendError) as caught:
        MlflowTracking(uri=uri).ping()
    assert f"MLflow at {uri} does not answer" in str(caught.value)
    assert caught.value.exit_code == ExitCode.BACKEND

"""MLflow as tracking server and model registry: a server URI, or SQLite under .mlops-ci/.

mlflow is imported inside the methods (it costs ~2 s). The client is built from the URI
given here and never from process-wide settings: model URIs are resolved to their artifact
locations through this client before the model is loaded. Reads of the embedded SQLite
database go through :mod:`mlflow_sqlite` instead, without importing MLflow (a rerun that only
reuses what the registry holds never pays for it); writes always go through the client.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from urllib.parse import urlsplit
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.backends.tracking.base import ModelVersionInfo, RunInfo
from mlops_ci.backends.tracking.mlflow_db import seed_embedded_db
from mlops_ci.backends.tracking.mlflow_sqlite import SqliteReader, Unsupported
from mlops_ci.errors import BackendError, NotFound
from mlops_ci.metrics import row_scores

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_QUIET = ("mlflow", "alembic", "mlflow.store.db.utils", "mlflow.tracking", "mlflow.pyfunc")


_FILTER_VALUE = re.compile(r"[A-Za-z0-9:._/@+-]{0,200}")
_FILTER_KEY = re.compile(r"[A-Za-z0-9_.]{1,100}")
PING_TIMEOUT_S = 10
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")


def _tag_filter(tags: dict[str, str]) -> list[str]:
    """MLflow filter clauses for exact tag values (only plain keys and values: no quoting games)."""
    clauses = []
    for key, value in tags.items():
        if not _FILTER_KEY.fullmatch(key) or not _FILTER_VALUE.fullmatch(value):
            raise ValueError(f"cannot search MLflow for tag {key!r} = {value!r}")
        clauses.append(f"tags.`{key}` = '{value}'")
    return clauses


def _auth(env) -> tuple[dict[str, str], tuple[str, str] | None]:
    """The headers and basic auth MLflow's own client would send, from its environment variables."""
    token = env.get("MLFLOW_TRACKING_TOKEN")
    user, password = env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD")
    return ({"Authorization": f"Bearer {token}"} if token else {}), ((user, password) if user and password else None)


_EMPTY = object()  # the embedded database does not exist yet


def _not_found(err: Exception) -> bool:
    code = getattr(err, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(err).lower()


class MlflowTracking:
    def __init__(self, uri: str, artifact_root: str | None = None) -> None:
        self.uri = uri
        self.artifact_root = artifact_root
        self._client = None
        self._reader: SqliteReader | None = None
        self._models: dict[str, Any] = {}  # loaded pyfunc models by location (the eval set, the suites)

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def embedded(self) -> bool:
        return self.uri.startswith("sqlite:")

    @property
    def _db(self) -> Path:
        return Path(self.uri.removeprefix("sqlite:///"))

    def _read(self, method: str, *args, **kwargs) -> Any:
        """``method`` of the SQLite reader for the embedded database; NotImplemented where the MLflow
        client must answer (a server, or tables laid out otherwise). ``_EMPTY`` when there is no
        database yet: nothing was ever recorded."""
        if not self.embedded:
            return NotImplemented
        if not self._db.is_file():
            return _EMPTY
        if self._reader is None:
            self._reader = SqliteReader(self._db)
        try:
            return getattr(self._reader, method)(*args, **kwargs)
        except Unsupported:
            return NotImplemented

    @property
    def client(self):
        if self._client is None:
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
            for name in _QUIET:
                logging.getLogger(name).setLevel(logging.WARNING)
            if self.embedded:
                seed_embedded_db(Path(self.uri.removeprefix("sqlite:///")), self.artifact_root)
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def _call(self, what: str, fn, *args, **kwargs) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as err:
            raise BackendError(f"MLflow at {self.uri}: {what} failed: {err.message}",
                               hint="check MLFLOW_TRACKING_URI and that the server is reachable") from err

    # -- runs -------------------------------------------------------------------------------
    def experiment(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self._read("experiment_id", name)
        if isinstance(found, str):
            return found
        exp = self._call("get experiment", self.client.get_experiment_by_name, name)
        if exp is not None:
            return exp.experiment_id
        location = None
        if self.embedded and self.artifact_root:
            location = f"{self.artifact_root}/{hashlib.sha1(name.encode()).hexdigest()[:12]}"
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException as err:  # created concurrently
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise BackendError(f"MLflow at {self.uri}: cannot create experiment {name!r}: {err.message}") from err
            return exp.experiment_id

    def start_run(self, experiment_id: str, *, run_name: str, tags: dict[str, str]) -> str:
        run = self._call("create run", self.client.create_run, experiment_id, tags=tags, run_name=run_name)
        return run.info.run_id

    def end_run(self, run_id: str, status: str) -> None:
        self._call("end run", self.client.set_terminated, run_id, status=status)

    def get_run(self, run_id: str) -> RunInfo:
        found = self._read("get_run", run_id)
        if isinstance(found, RunInfo):
            return found
        run = self._call(f"get run {run_id}", self.client.get_run, run_id)
        return RunInfo(run_id=run_id, experiment_id=run.info.experiment_id, status=run.info.status,
                       params=dict(run.data.params), metrics=dict(run.data.metrics), tags=dict(run.data.tags))

    def search_runs(self, experiment: str, tags: dict[str, str], *, status: str | None = None) -> list[RunInfo]:
        clauses = _tag_filter(tags)  # the same values are accepted whichever path answers
        if status is not None and status not in RUN_STATUSES:
            raise ValueError(f"unknown MLflow run status {status!r}")
        found = self._read("search_runs", experiment, tags, status=status)
        if found is _EMPTY:
            return []
        if found is not NotImplemented:
            return found
        exp = self._call("get experiment", self.client.get_experiment_by_name, experiment)
        if exp is None:
            return []
        if status is not None:
            clauses.append(f"attributes.status = '{status}'")
        runs = self._call("search runs", self.client.search_runs, [exp.experiment_id],
                          filter_string=" and ".join(clauses),
                          order_by=["attributes.start_time DESC"], max_results=100)
        return [RunInfo(run_id=r.info.run_id, experiment_id=r.info.experiment_id, status=r.info.status,
                        params=dict(r.data.params), metrics=dict(r.data.metrics), tags=dict(r.data.tags))
                for r in runs]

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call(f"tag run {run_id}", self.client.set_tag, run_id, key, value)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._call(f"store {artifact_file} in run {run_id}", self.client.log_text, run_id, text, artifact_file)

    def load_text(self, run_id: str, artifact_file: str) -> str | None:
        import tempfile
        from pathlib import Path

        from mlflow.exceptions import MlflowException

        with tempfile.TemporaryDirectory(prefix="mlops-ci-artifact-") as tmp:
            try:
                local = self.client.download_artifacts(run_id, artifact_file, tmp)
            except (MlflowException, OSError):
                return None
            path = Path(local)
            return path.read_text(encoding="utf-8") if path.is_file() else None

    def metric_history(self, run_id: str) -> list[dict[str, float]]:
        found = self._read("metric_history", run_id)
        if isinstance(found, list):
            return found
        run = self._call(f"get run {run_id}", self.client.get_run, run_id)
        steps: dict[int, dict[str, float]] = {}
        for key in sorted(run.data.metrics):
            for m in self._call(f"get the history of {key}", self.client.get_metric_history, run_id, key):
                steps.setdefault(int(m.step), {"step": float(m.step)})[key] = float(m.value)
        return [steps[s] for s in sorted(steps)]

    def ping(self) -> None:
        """An http(s) server must answer an API call with our credentials; SQLite needs nothing."""
        if not self.uri.startswith(("http://", "https://")):
            return
        import requests

        headers, auth = _auth(os.environ)
        url = f"{self.uri.rstrip('/')}/api/2.0/mlflow/experiments/search"
        try:
            resp = requests.get(url, params={"max_results": 1}, headers=headers, auth=auth, timeout=PING_TIMEOUT_S)
        except requests.RequestException as err:
            raise BackendError(f"MLflow at {self.uri} does not answer ({type(err).__name__})",
                               hint="check MLFLOW_TRACKING_URI (or tracking.uri) and that the server is up") from err
        if resp.status_code in (401, 403):
            raise BackendError(f"MLflow at {self.uri} refused the credentials (HTTP {resp.status_code})",
                               hint="set MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or "
                                    "MLFLOW_TRACKING_TOKEN from a secret")
        if resp.status_code >= 400:
            raise BackendError(f"MLflow at {self.uri} answered HTTP {resp.status_code} to an API call",
                               hint="check that MLFLOW_TRACKING_URI points at an MLflow tracking server")

    def run_url(self, run_id: str, experiment_id: str) -> str | None:
        if self.uri.startswith(("http://", "https://")):
            return f"{self.uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        return None

    # -- models -----------------------------------------------------------------------------
    def logged_model_uri(self, run_id: str, experiment_id: str) -> str | None:
        """The newest model logged by a run, as ``models:/<model id>`` (None if it logged none)."""
        found = self._read("logged_model_uri", run_id, experiment_id)
        if found is _EMPTY or isinstance(found, str):
            return None if found is _EMPTY else found
        models = self._call("search logged models", self.client.search_logged_models, [experiment_id],
                            filter_string=f"source_run_id = '{run_id}'")
        if not models:
            return None
        newest = max(models, key=lambda m: m.creation_timestamp or 0)
        return f"models:/{newest.model_id}"

    def artifact_location(self, model_uri: str) -> str:
        """The fixed storage URI of a model URI (models:/m-..., models:/name/version, runs:/...)."""
        if model_uri.startswith("models:/m-"):
            model = self._call("get logged model", self.client.get_logged_model, model_uri.removeprefix("models:/"))
            return model.artifact_location
        if model_uri.startswith("models:/"):
            name, _, version = model_uri.removeprefix("models:/").partition("/")
            return self._call("resolve model version", self.client.get_model_version_download_uri, name, version)
        if model_uri.startswith("runs:/"):
            run_id, _, path = model_uri.removeprefix("runs:/").partition("/")
            run = self._call(f"get run {run_id}", self.client.get_run, run_id)
            return f"{run.info.artifact_uri.rstrip('/')}/{path}"
        return model_uri

    def local_copy(self, artifact_uri: str) -> str:
        """A local folder holding the files at ``artifact_uri``: the folder itself for a file: URI,
        else a download through this backend's server (an mlflow-artifacts:/ location never
        resolves against a process-wide MLFLOW_TRACKING_URI: tracking.uri may name another)."""
        split = urlsplit(artifact_uri)
        if split.scheme == "":
            return artifact_uri
        if split.scheme == "file":
            from urllib.parse import unquote

            return unquote(split.path)
        from mlflow.artifacts import download_artifacts

        return self._call(f"download {artifact_uri}", download_artifacts, artifact_uri=artifact_uri,
                          tracking_uri=self.uri)

    def predict(self, model_uri: str, frame: pd.DataFrame) -> np.ndarray:
        import numpy as np
        import mlflow.pyfunc

        location = self.artifact_location(model_uri)
        try:
            model = self._models.get(location)
            if model is None:
                model = self._models[location] = mlflow.pyfunc.load_model(self.local_copy(location))
            out = model.predict(frame)
        except Exception as err:  # user model code can raise anything
            first = (str(err).strip().splitlines() or [""])[0][:300]
            raise BackendError(f"model {model_uri} failed to load or predict: {type(err).__name__}: {first}",
                               hint="run the model's predict on the eval data locally to reproduce") from err
        try:
            arr = np.asarray(getattr(out, "values", out), dtype=float)
        except (TypeError, ValueError) as err:
            raise BackendError(f"model {model_uri} returned predictions that are not numbers ({err})",
                               hint="predict must return scores: P(class 1) for a classifier, the value for a "
                                    "regressor (see 'The model contract' in the README)") from err
        if arr.ndim > 2 or arr.ndim == 0:
            raise BackendError(f"model {model_uri} returned an array of shape {arr.shape}, not one score per row")
        arr = row_scores(arr)
        if arr.shape[0] != len(frame):
            raise BackendError(f"model {model_uri} returned {arr.shape[0]} predictions for {len(frame)} rows")
        return arr

    def _version_info(self, mv) -> ModelVersionInfo:
        location = self._call("resolve model version", self.client.get_model_version_download_uri,
                              mv.name, mv.version)
        return ModelVersionInfo(name=mv.name, version=str(mv.version), source=mv.source, artifact_uri=location,
                                run_id=mv.run_id or None, tags=dict(mv.tags or {}),
                                aliases=tuple(getattr(mv, "aliases", ()) or ()))

    def version_by_alias(self, name: str, alias: str) -> ModelVersionInfo | None:
        from_db = self._read("version_by_alias", name, alias)
        if from_db is not NotImplemented:
            return None if from_db is _EMPTY else from_db
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException as err:
            if _not_found(err):
                return None
            raise BackendError(f"MLflow at {self.uri}: cannot resolve alias {name}@{alias}: {err.message}") from err
        return self._version_info(mv)

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        from_db = self._read("get_version", name, version)
        if isinstance(from_db, ModelVersionInfo):
            return from_db
        if from_db is None or from_db is _EMPTY:
            raise NotFound(f"model version {name} v{version} does not exist in MLflow at {self.uri}",
                           hint="list versions in the MLflow UI or pass a version that exists")
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(name, str(version))
        except MlflowException as err:
            if _not_found(err):
                raise NotFound(f"model version {name} v{version} does not exist in MLflow at {self.uri}",
                               hint="list versions in the MLflow UI or pass a version that exists") from err
            raise BackendError(f"MLflow at {self.uri}: get version {name} v{version}: {err.message}") from err
        return self._version_info(mv)

    def search_versions(self, name: str, tags: dict[str, str], *, limit: int | None = None) -> list[ModelVersionInfo]:
        clauses = [f"name = '{name}'", *_tag_filter(tags)] if _FILTER_VALUE.fullmatch(name) else None
        if clauses is None:
            raise ValueError(f"cannot search MLflow for model {name!r}")
        from_db = self._read("search_versions", name, tags, limit=limit or 1000)
        if from_db is _EMPTY:
            return []
        if from_db is not NotImplemented:
            return from_db
        found = self._call("search model versions", self.client.search_model_versions, " and ".join(clauses),
                           max_results=limit or 1000, order_by=["version_number DESC"])
        return [self._version_info(mv) for mv in sorted(found, key=lambda v: int(v.version), reverse=True)]

    def register(self, name: str, model_uri: str, *, run_id: str | None, tags: dict[str, str]) -> ModelVersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException as err:
            if "already exists" not in str(err).lower() and getattr(err, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise BackendError(f"MLflow at {self.uri}: cannot create registered model {name!r}: {err.message}") from err
        model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        # register the fixed storage location, not an indirection that needs the fluent API to resolve
        source = self.artifact_location(model_uri)
        mv = self._call("create model version", self.client.create_model_version, name, source=source,
                        run_id=run_id, tags=tags, model_id=model_id)
        return self._version_info(mv)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call(f"set alias {name}@{alias}", self.client.set_registered_model_alias, name, alias, str(version))

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call("tag model version", self.client.set_model_version_tag, name, str(version), key, value)

    def digest(self, artifact_uri: str) -> str:
        """sha256 over the model's files (sorted paths and contents): what the manifest pins."""
        from mlflow.artifacts import download_artifacts

        try:
            local = Path(download_artifacts(artifact_uri=artifact_uri, tracking_uri=self.uri))
        except Exception as err:
            raise BackendError(f"cannot download model artifacts from {artifact_uri}: {err}") from err
        digest = hashlib.sha256()
        files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else [local]
        for path in files:
            rel = path.relative_to(local).as_posix() if local.is_dir() else path.name
            digest.update(rel.encode() + b"\0")
            with open(path, "rb") as fh:
                digest.update(hashlib.file_digest(fh, "sha256").digest())
        return "sha256:" + digest.hexdigest()

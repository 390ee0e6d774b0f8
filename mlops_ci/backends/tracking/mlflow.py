"""MLflow as tracking server and model registry: a server URI, or SQLite under .mlops-ci/.

mlflow is imported inside the methods (it costs ~2 s). The client is built from the URI
given here and never from process-wide settings: model URIs are resolved to their artifact
locations through this client before the model is loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.backends.tracking.base import ModelVersionInfo, RunInfo
from mlops_ci.errors import BackendError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_QUIET = ("mlflow", "alembic", "mlflow.store.db.utils", "mlflow.tracking", "mlflow.pyfunc")


def _not_found(err: Exception) -> bool:
    code = getattr(err, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(err).lower()


def _schema_template() -> Path | None:
    """An empty MLflow SQLite database with every migration applied, made once per MLflow version
    in the user's cache (creating one runs ~50 alembic migrations: about 2 s on every new repo)."""
    import sqlite3
    import tempfile
    from importlib.metadata import version

    from mlops_ci.checks.suites.env import cache_root

    folder = cache_root() / "mlflow-schema"
    template = folder / f"mlflow-{version('mlflow')}.db"
    if template.is_file():
        return template
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        db = Path(tmp) / "schema.db"
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=f"sqlite:///{db.as_posix()}").search_experiments()  # runs the migrations
        with sqlite3.connect(db) as con:
            if not con.execute("SELECT 1 FROM alembic_version").fetchone():
                return None
        try:
            os.link(db, template)  # atomic and never replaces: a concurrent maker may have won
        except FileExistsError:
            pass
        except OSError:
            return None
    return template


def _seed_embedded_db(db: Path, artifact_root: str | None) -> None:
    """Start a new embedded database as a copy of the migrated empty schema; the Default
    experiment's artifact location is this workspace's artifact root, not the template's."""
    import shutil
    import sqlite3
    import tempfile

    db.parent.mkdir(parents=True, exist_ok=True)
    if db.exists():
        return
    try:
        template = _schema_template()
    except Exception:  # noqa: BLE001 - only a speed-up: MLflow creates the database itself
        return
    if template is None:
        return
    with tempfile.TemporaryDirectory(dir=db.parent) as tmp:
        copy = Path(tmp) / db.name
        shutil.copyfile(template, copy)
        if artifact_root:
            with sqlite3.connect(copy) as con:
                con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                            (f"{artifact_root}/0",))
        try:
            os.link(copy, db)  # never replaces a database another process created meanwhile
        except OSError:
            pass


class MlflowTracking:
    def __init__(self, uri: str, artifact_root: str | None = None) -> None:
        self.uri = uri
        self.artifact_root = artifact_root
        self._client = None

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def embedded(self) -> bool:
        return self.uri.startswith("sqlite:")

    @property
    def client(self):
        if self._client is None:
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
            for name in _QUIET:
                logging.getLogger(name).setLevel(logging.WARNING)
            if self.embedded:
                _seed_embedded_db(Path(self.uri.removeprefix("sqlite:///")), self.artifact_root)
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
        run = self._call(f"get run {run_id}", self.client.get_run, run_id)
        return RunInfo(run_id=run_id, experiment_id=run.info.experiment_id, status=run.info.status,
                       params=dict(run.data.params), metrics=dict(run.data.metrics), tags=dict(run.data.tags))

    def run_url(self, run_id: str, experiment_id: str) -> str | None:
        if self.uri.startswith(("http://", "https://")):
            return f"{self.uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        return None

    # -- models -----------------------------------------------------------------------------
    def logged_model_uri(self, run_id: str, experiment_id: str) -> str | None:
        """The newest model logged by a run, as ``models:/<model id>`` (None if it logged none)."""
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

    def predict(self, model_uri: str, frame: pd.DataFrame) -> np.ndarray:
        import numpy as np
        import mlflow.pyfunc

        location = self.artifact_location(model_uri)
        try:
            model = mlflow.pyfunc.load_model(location)
            out = model.predict(frame)
        except Exception as err:  # user model code can raise anything
            first = (str(err).strip().splitlines() or [""])[0][:300]
            raise BackendError(f"model {model_uri} failed to load or predict: {type(err).__name__}: {first}",
                               hint="run the model's predict on the eval data locally to reproduce") from err
        arr = np.asarray(getattr(out, "values", out), dtype=float)
        if arr.ndim == 2:
            arr = arr[:, -1] if arr.shape[1] > 1 else arr[:, 0]
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
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException as err:
            if _not_found(err):
                return None
            raise BackendError(f"MLflow at {self.uri}: cannot resolve alias {name}@{alias}: {err.message}") from err
        return self._version_info(mv)

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(name, str(version))
        except MlflowException as err:
            if _not_found(err):
                raise BackendError(f"model version {name} v{version} does not exist in MLflow at {self.uri}",
                                   hint="list versions in the MLflow UI or pass a version that exists") from err
            raise BackendError(f"MLflow at {self.uri}: get version {name} v{version}: {err.message}") from err
        return self._version_info(mv)

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

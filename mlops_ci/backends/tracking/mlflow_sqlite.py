"""Reads of the embedded MLflow database without importing MLflow.

MLflow costs about 2 s to import; deciding what a run would reuse (`run --dry-run`, a rerun of an
unchanged head) only reads the registry. For the embedded SQLite database those reads are plain
queries over MLflow's own tables (runs, tags, metrics, experiments, logged_models, model_versions,
model_version_tags, registered_model_aliases), opened read-only. The layout is checked first: a
database of an MLflow whose tables differ raises :class:`Unsupported`, and the caller goes through
the MLflow client instead. Writes always go through the client. The tracking contract suite
(tests/pipeline/test_tracking_contract.py) holds both paths to the same answers.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlops_ci.backends.tracking.base import ModelVersionInfo, RunInfo

DELETED_STAGE = "Deleted_Internal"  # MLflow's stage of a deleted model version
_NEEDED = {
    "experiments": {"experiment_id", "name", "lifecycle_stage"},
    "runs": {"run_uuid", "status", "start_time", "lifecycle_stage", "experiment_id"},
    "tags": {"key", "value", "run_uuid"},
    "params": {"key", "value", "run_uuid"},
    "latest_metrics": {"key", "value", "is_nan", "run_uuid"},
    "metrics": {"key", "value", "step", "timestamp", "is_nan", "run_uuid"},
    "logged_models": {"model_id", "experiment_id", "source_run_id", "creation_timestamp_ms", "lifecycle_stage"},
    "model_versions": {"name", "version", "source", "run_id", "storage_location", "current_stage"},
    "model_version_tags": {"key", "value", "name", "version"},
    "registered_model_aliases": {"alias", "version", "name"},
}


class Unsupported(Exception):
    """The database is not laid out as this reader expects: use the MLflow client."""


class SqliteReader:
    def __init__(self, db: Path) -> None:
        self.db = db
        self._checked: bool | None = None
        self._workspaces = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(f"{self.db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        except sqlite3.Error as err:
            raise Unsupported(str(err)) from err
        try:
            if self._checked is None:
                self._check(con)
            yield con
        except sqlite3.Error as err:
            raise Unsupported(str(err)) from err
        finally:
            con.close()

    def _check(self, con: sqlite3.Connection) -> None:
        for table, columns in _NEEDED.items():
            have = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
            if not columns <= have:
                self._checked = False
                raise Unsupported(f"table {table} lacks {sorted(columns - have)}")
        self._workspaces = "workspace" in {row[1] for row in con.execute("PRAGMA table_info(model_versions)")}
        self._checked = True

    def _ws(self, alias: str = "") -> str:
        """A clause keeping the default workspace (MLflow 3.17 and later have workspaces)."""
        return f" AND {alias}workspace = 'default'" if self._workspaces else ""

    # -- runs ---------------------------------------------------------------------------------------
    def experiment_id(self, name: str) -> str | None:
        with self._connect() as con:
            row = con.execute("SELECT experiment_id FROM experiments WHERE name = ? AND lifecycle_stage = 'active'"
                              + self._ws(), (name,)).fetchone()
        return str(row[0]) if row else None

    def _run(self, con: sqlite3.Connection, run_id: str, experiment_id: str, status: str) -> RunInfo:
        tags = dict(con.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)))
        params = dict(con.execute("SELECT key, value FROM params WHERE run_uuid = ?", (run_id,)))
        metrics = {k: math.nan if nan else float(v) for k, v, nan in
                   con.execute("SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", (run_id,))}
        return RunInfo(run_id=run_id, experiment_id=str(experiment_id), status=status, params=params,
                       metrics=metrics, tags=tags)

    def get_run(self, run_id: str) -> RunInfo | None:
        with self._connect() as con:
            row = con.execute("SELECT experiment_id, status FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
            return self._run(con, run_id, row[0], row[1]) if row else None

    def search_runs(self, experiment: str, tags: dict[str, str], *, status: str | None = None,
                    limit: int = 100) -> list[RunInfo]:
        with self._connect() as con:
            exp = con.execute("SELECT experiment_id FROM experiments WHERE name = ? AND lifecycle_stage = 'active'"
                              + self._ws(), (experiment,)).fetchone()
            if exp is None:
                return []
            sql = "SELECT r.run_uuid, r.status FROM runs r WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active'"
            args: list = [exp[0]]
            if status is not None:
                sql += " AND r.status = ?"
                args.append(status)
            for key, value in tags.items():
                sql += " AND EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = ? AND t.value = ?)"
                args += [key, value]
            sql += " ORDER BY r.start_time DESC, r.run_uuid LIMIT ?"
            rows = con.execute(sql, [*args, limit]).fetchall()
            return [self._run(con, run_id, exp[0], st) for run_id, st in rows]

    def metric_history(self, run_id: str) -> list[dict[str, float]]:
        steps: dict[int, dict[str, float]] = {}
        with self._connect() as con:
            for key, value, step, nan in con.execute(
                    "SELECT key, value, step, is_nan FROM metrics WHERE run_uuid = ? ORDER BY key, step, timestamp",
                    (run_id,)):
                steps.setdefault(int(step), {"step": float(step)})[key] = math.nan if nan else float(value)
        return [steps[s] for s in sorted(steps)]

    def logged_model_uri(self, run_id: str, experiment_id: str) -> str | None:
        with self._connect() as con:
            row = con.execute("SELECT model_id FROM logged_models WHERE source_run_id = ? AND experiment_id = ? "
                              "AND (lifecycle_stage IS NULL OR lifecycle_stage = 'active') "
                              "ORDER BY creation_timestamp_ms DESC LIMIT 1", (run_id, experiment_id)).fetchone()
        return f"models:/{row[0]}" if row else None

    # -- model versions -----------------------------------------------------------------------------
    def _version(self, con: sqlite3.Connection, row) -> ModelVersionInfo:
        name, version, source, run_id, storage = row
        tags = dict(con.execute("SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?"
                                + self._ws(), (name, version)))
        aliases = tuple(a for (a,) in con.execute(
            "SELECT alias FROM registered_model_aliases WHERE name = ? AND version = ?" + self._ws(),
            (name, version)))
        return ModelVersionInfo(name=name, version=str(version), source=source or "",
                                artifact_uri=storage or source or "", run_id=run_id or None, tags=tags,
                                aliases=tuple(sorted(aliases)))

    _COLUMNS = "name, version, source, run_id, storage_location"

    def get_version(self, name: str, version: str) -> ModelVersionInfo | None:
        if not str(version).isdigit():
            return None
        with self._connect() as con:
            row = con.execute(f"SELECT {self._COLUMNS} FROM model_versions WHERE name = ? AND version = ? "
                              "AND current_stage IS NOT ?" + self._ws(), (name, int(version), DELETED_STAGE)).fetchone()
            return self._version(con, row) if row else None

    def version_by_alias(self, name: str, alias: str) -> ModelVersionInfo | None:
        with self._connect() as con:
            row = con.execute("SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?"
                              + self._ws(), (name, alias)).fetchone()
        return self.get_version(name, str(row[0])) if row else None

    def search_versions(self, name: str, tags: dict[str, str], *, limit: int = 1000) -> list[ModelVersionInfo]:
        sql = (f"SELECT {self._COLUMNS} FROM model_versions v WHERE v.name = ? AND v.current_stage IS NOT ?"
               + self._ws("v."))
        args: list = [name, DELETED_STAGE]
        for key, value in tags.items():
            sql += (" AND EXISTS (SELECT 1 FROM model_version_tags t WHERE t.name = v.name AND t.version = v.version "
                    "AND t.key = ? AND t.value = ?" + self._ws("t.") + ")")
            args += [key, value]
        sql += " ORDER BY v.version DESC LIMIT ?"
        with self._connect() as con:
            return [self._version(con, row) for row in con.execute(sql, [*args, limit]).fetchall()]

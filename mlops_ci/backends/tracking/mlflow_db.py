"""The embedded MLflow database: a new SQLite file starts as a copy of the migrated empty schema.

Creating an MLflow database runs ~50 alembic migrations (about 2 s on every new repository), so
the migrated empty schema is made once per MLflow version in the user's cache and copied.
"""

from __future__ import annotations

import os
from pathlib import Path


def _schema_template() -> Path | None:
    """An empty MLflow SQLite database with every migration applied, made once per MLflow version
    in the user's cache (creating one runs ~50 alembic migrations: about 2 s on every new repo)."""
    import sqlite3
    import tempfile
    from importlib.metadata import version

    from mlops_ci.toolenv import cache_root

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


def seed_embedded_db(db: Path, artifact_root: str | None) -> None:
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

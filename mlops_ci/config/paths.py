"""The files a config names must be there: a mistyped path is a config error (exit 3) before
anything runs, not a failed training (exit 5) minutes later.

- ``train.script`` is a file in the work tree.
- ``data.train`` and ``data.eval`` (the entity tables instead, for data from the feature store) are in the work tree, or tracked by DVC there and not pulled
  yet: a ``<path>.dvc`` file (or one of a folder above it, ``dvc add data``), or an ``outs``
  entry of a ``dvc.yaml`` / ``dvc.lock`` in the path's folder or above, up to the repository's
  top (as :mod:`mlops_ci.data.versions` reads them). A file tracked by git but deleted from the
  work tree is named right: reading it fails later as missing data (exit 4), not here.

Paths are relative to the folder of `.mlops-ci.yaml`. A suggested fix is always a path that
passes the same check.
"""

from __future__ import annotations

import difflib
import os
import posixpath
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlops_ci.config.schema import Config
from mlops_ci.config.semantics import Problem

_SKIP_DIRS = {"__pycache__", "node_modules"}
# the names whose format data.format "auto" tells (mlops_ci.data.tables.detect_format)
DATA_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv", ".jsonl", ".ndjson")
_MAX_CANDIDATES = 5000  # entries looked at for a "did you mean"


def path_problems(config: Config, root: Path) -> list[Problem]:
    """A problem for each model path of ``config`` that is missing under ``root`` (the folder of
    `.mlops-ci.yaml`)."""
    root = Path(root)
    top = _repo_top(root)
    found: list[Problem] = []
    for name, model in config.models.items():
        loc = ("models", name)
        script = model.train.script
        if not _is_script(root, script):
            default = "" if "script" in model.train.model_fields_set else " (the default)"
            kinds = (".py", Path(script).suffix or ".py")  # torchrun runs Python scripts
            fix = _hint(root, script, lambda p: p.endswith(kinds) and _is_script(root, p),
                        "correct the path (relative to the folder of .mlops-ci.yaml), or add the script")
            found.append(Problem(loc + ("train", "script"), f"training script {script!r}{default} not found", fix))
        suffixes = DATA_SUFFIXES if model.data.format == "auto" else ("",)
        entities = model.features.entities if model.features is not None else None
        for key in ("train", "eval"):
            rel = getattr(model.data, key)
            if entities is not None:  # written from the feature store: its entity table must be there instead
                rel = getattr(entities, key)
                if not (_data_present(root, top, rel) or _git_tracked(root, rel)):
                    found.append(Problem(loc + ("features", "entities", key), _data_message(root, rel),
                                         f"add the entity table and track it: `dvc add {rel}`"))
                continue
            if model.data.format == "auto" and not rel.lower().endswith(DATA_SUFFIXES) and not (root / rel).is_dir():
                found.append(Problem(loc + ("data", key), f"cannot tell the format of {rel!r} from its name",
                                     "name it .csv, .tsv, .csv.gz, .jsonl, .ndjson or .parquet, or set data.format "
                                     "(csv, jsonl or parquet)"))
                continue
            if _data_present(root, top, rel) or (not (root / rel).is_dir() and _git_tracked(root, rel)):
                continue
            named = {posixpath.normpath(p) for p in (model.data.train, model.data.eval)}  # eval is not train
            fix = _hint(root, rel, lambda p: p.lower().endswith(suffixes) and p not in named
                        and _data_present(root, top, p),
                        "correct the path (relative to the folder of .mlops-ci.yaml), or add the data and track "
                        f"it: `dvc add {rel}`")
            found.append(Problem(loc + ("data", key), _data_message(root, rel), fix))
    return found


def _is_script(root: Path, rel: str) -> bool:
    return (root / rel).is_file()


def _data_present(root: Path, top: Path, rel: str) -> bool:
    return (root / rel).is_file() or dvc_tracked(root / rel, top)


def _data_message(root: Path, rel: str) -> str:
    if (root / rel).is_dir():
        return f"{rel!r} is a folder: name one CSV, JSON-lines or Parquet file"
    return (f"{rel!r} is not in the work tree and not tracked by DVC ({rel}.dvc, or an output in "
            "dvc.yaml / dvc.lock)")


def dvc_tracked(target: Path, top: Path) -> bool:
    """Whether DVC tracks ``target`` (in the work tree or not): a ``.dvc`` file of it or of a
    folder above, or an output of a ``dvc.yaml`` / ``dvc.lock`` stage, no higher than ``top``."""
    target = Path(os.path.normpath(target))
    for node in (target, *target.parents):
        if node == top or not _within(node, top):
            break
        dvc_file = node.with_name(node.name + ".dvc")
        if dvc_file.is_file() and _covers(_outs_of(_read_yaml(dvc_file)), _rel(target, node.parent)):
            return True
    folder = target.parent
    while _within(folder, top):
        for name in ("dvc.yaml", "dvc.lock"):
            doc = _read_yaml(folder / name)
            stages = doc.get("stages") if isinstance(doc, dict) else None
            for stage in (stages or {}).values() if isinstance(stages, dict) else ():
                if isinstance(stage, dict) and _covers(_outs_of(stage), _rel(target, folder)):
                    return True
        if folder == top or folder.parent == folder:
            break
        folder = folder.parent
    return False


def _outs_of(doc: Any) -> list[str]:
    """Output paths of a `.dvc` file or a stage: ``- path``, ``- path: {options}`` (dvc.yaml) or
    ``- {path: ..., md5: ...}`` (`.dvc`, dvc.lock)."""
    outs = doc.get("outs") if isinstance(doc, dict) else None
    paths = []
    for out in outs if isinstance(outs, list) else ():
        if isinstance(out, str):
            paths.append(out)
        elif isinstance(out, dict) and "path" in out:
            paths.append(str(out["path"]))
        elif isinstance(out, dict) and len(out) == 1:
            paths.append(str(next(iter(out))))
    return paths


def _covers(outs: list[str], rel: str) -> bool:
    """Whether one of ``outs`` is ``rel`` or a folder above it (a tracked directory)."""
    for out in outs:
        out = posixpath.normpath(out.replace("\\", "/"))
        if rel == out or rel.startswith(out.rstrip("/") + "/"):
            return True
    return False


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        return None
    from ruamel.yaml import YAML

    try:
        return YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except Exception:  # a broken DVC file tracks nothing; DVC itself reports it
        return None


def _rel(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path, folder)).as_posix()


def _within(path: Path, top: Path) -> bool:
    return path == top or top in path.parents


def _repo_top(root: Path) -> Path:
    """The nearest folder at or above ``root`` that holds `.git` or `.dvc`; else ``root``."""
    root = Path(os.path.abspath(root))
    for folder in (root, *root.parents):
        if (folder / ".git").exists() or (folder / ".dvc").is_dir():
            return folder
    return root


def _git_tracked(root: Path, rel: str) -> bool:
    """Tracked by git, e.g. deleted from the work tree: the path is right, the data is missing."""
    from mlops_ci import gitutil
    from mlops_ci.errors import FatalError

    try:
        proc = gitutil.git(["ls-files", "--error-unmatch", "--", rel], root, check=False)
    except FatalError:
        return False
    return proc.returncode == 0


def _hint(root: Path, rel: str, passes: Callable[[str], bool], otherwise: str) -> str:
    close = difflib.get_close_matches(rel, [c for c in _candidates(root, rel) if passes(c)], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else otherwise


def _candidates(root: Path, rel: str) -> list[str]:
    """Paths under ``root`` as deep as ``rel`` (and `.dvc` files as the path they track)."""
    depth = len(Path(rel).parts)
    out: list[str] = []
    for path in _walk(root, "", depth):
        out.append(path.removesuffix(".dvc"))
        if len(out) >= _MAX_CANDIDATES:
            break
    return sorted(set(out))


def _walk(folder: Path, prefix: str, depth: int) -> Iterator[str]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name in _SKIP_DIRS:
            continue
        rel = f"{prefix}{entry.name}"
        yield rel
        if depth > 1 and entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), rel + "/", depth - 1)

"""Validate the files a promotion would commit, before it commits them (and in a dry run).

Checks, in order, for every Kubernetes object in every file written:

1. core kinds (Deployment, Service, HorizontalPodAutoscaler, Namespace, ...): the upstream
   OpenAPI schemas that `kubernetes-validate` ships per Kubernetes version, strict (an unknown
   field is refused, as the API server's strict field validation does);
2. custom resources (InferenceService, Argo CD's Application, ...): the openAPIV3Schema of the
   CRD that defines them, closed the same way, from the CRD files found under the folders in
   ``MLOPS_CI_CRDS`` (os.pathsep-separated: point it at the CRDs your cluster runs, e.g.
   kserve/config/crd/full; crds.py). mlops-ci bundles no CRD; without one, a custom resource
   gets only check 3 and the report says so;
3. what the schemas leave open: mlops-ci's own structural check of the InferenceService fields
   it writes, ObjectMeta rules (DNS names, label keys and values, string annotations), and
   resource quantities (valid, requests within limits, extended resources such as GPUs equal):
   rules.py;
4. ``kubectl kustomize`` (or ``kustomize build``) of the environment folder, run on a temporary
   copy of the GitOps checkout with the new files written into it: the checkout itself is only
   written by a commit, after validation passed. ``MLOPS_CI_KUSTOMIZE`` names the binary to use
   (default: kubectl, else kustomize, on PATH), or ``skip`` to leave this step out.

A problem names the file, the object and the field. Validation never changes a file.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlops_ci.errors import PromotionError
from mlops_ci.serving import rules, yamlio
from mlops_ci.serving.crds import CrdIndex
from mlops_ci.serving.rules import dotted

KUBERNETES_VERSION = "1.32"  # the schemas core kinds are checked against (MLOPS_CI_KUBERNETES_VERSION)
KUSTOMIZE_TIMEOUT_S = 120
MAX_MESSAGE = 300
KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")

Reader = Callable[[str], bytes | None]


@dataclass(frozen=True)
class Problem:
    path: str  # the file in the GitOps repository
    obj: str  # "Kind/name", or "" for the file as a whole
    where: str  # the field, e.g. spec.predictor.minReplicas ("" for the object or file)
    message: str
    check: str  # yaml, core, crd, structure, metadata, quantity, kustomize

    def __str__(self) -> str:
        at = ": ".join(x for x in (self.obj, self.where) if x)
        return f"{self.path}: {at + ': ' if at else ''}{self.message} [{self.check}]"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # what ran, e.g. "crd InferenceService"
    skipped: list[str] = field(default_factory=list)  # what could not run, and why

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Settings:
    crd_paths: tuple[Path, ...] = ()
    kustomize: str | None = None  # a binary path or name; "skip"; None: kubectl, else kustomize, on PATH
    kubernetes_version: str = KUBERNETES_VERSION

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        crds = tuple(Path(p) for p in env.get("MLOPS_CI_CRDS", "").split(os.pathsep) if p.strip())
        return cls(crd_paths=crds, kustomize=env.get("MLOPS_CI_KUSTOMIZE") or None,
                   kubernetes_version=env.get("MLOPS_CI_KUBERNETES_VERSION") or KUBERNETES_VERSION)


# ---------------------------------------------------------------------------------------------
# entry points


def check(files: Mapping[str, bytes | None], *, root: str, env: str, settings: Settings,
          checkout_dir: Path | None = None, read: Reader | None = None, what: str = "the promotion") -> Report:
    """Validate ``files`` (path -> new bytes, None: deleted); raise PromotionError on any problem."""
    report = validate(files, root=root, env=env, settings=settings, checkout_dir=checkout_dir, read=read)
    if report.problems:
        shown = report.problems[:20]
        more = len(report.problems) - len(shown)
        raise PromotionError(
            f"{what} would commit invalid manifests ({len(report.problems)} problem"
            f"{'s' if len(report.problems) != 1 else ''}); nothing was committed:\n  "
            + "\n  ".join(map(str, shown)) + (f"\n  ... and {more} more" if more else ""),
            hint="fix the named field: in .mlops-ci.yaml (serving) for what mlops-ci writes, in the GitOps "
                 "repository for what you wrote there (a promotion keeps it as it is); then promote again")
    return report


def validate(files: Mapping[str, bytes | None], *, root: str, env: str, settings: Settings,
             checkout_dir: Path | None = None, read: Reader | None = None) -> Report:
    report = Report()
    crds = CrdIndex(settings.crd_paths)
    for path, data in sorted(files.items()):
        name = posixpath.basename(path)
        if data is None or name.startswith(".") or not name.endswith((".yaml", ".yml")) or name in KUSTOMIZATIONS:
            continue  # deleted, not a manifest (the hold marker), or a kustomization: the build checks those
        _check_file(path, data, report, crds, settings)
    _kustomize(files, posixpath.join(root, env), report, settings, checkout_dir, read)
    return report


# ---------------------------------------------------------------------------------------------
# one file


def _check_file(path: str, data: bytes, report: Report, crds: CrdIndex, settings: Settings) -> None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        docs = [d for d in YAML(typ="safe").load_all(data.decode("utf-8")) if d is not None]
    except (UnicodeDecodeError, YAMLError) as err:
        report.problems.append(Problem(path, "", "", f"not valid YAML: {_short(str(err))}", "yaml"))
        return
    for doc in docs:
        if not (isinstance(doc, dict) and isinstance(doc.get("apiVersion"), str) and doc["apiVersion"]
                and isinstance(doc.get("kind"), str) and doc["kind"]):
            report.problems.append(Problem(path, "", "", "a document is not a Kubernetes object "
                                           "(a mapping with apiVersion and kind)", "yaml"))
            continue
        if doc["apiVersion"].startswith("kustomize.config.k8s.io/"):
            continue  # the kustomize build checks kustomizations
        name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
        obj = f"{doc['kind']}/{name or '?'}"
        found = _core_problems(doc, settings, report)
        if found is None:  # not a core kind
            found = _crd_problems(doc, crds, report)
        found += [(w, m, "structure") for w, m in rules.structure_problems(doc)]
        found += [("metadata" + (f".{w}" if w else ""), m, "metadata") for w, m in rules.metadata_problems(doc)]
        seen = {w for w, _, _ in found}  # a CRD that checks quantities already named the field
        found += [(w, m, "quantity") for w, m in rules.quantity_problems(doc) if w not in seen]
        report.problems += [Problem(path, obj, where, _short(msg), kind) for where, msg, kind in found]


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + "..."


# ---------------------------------------------------------------------------------------------
# core kinds: kubernetes-validate


def _core_problems(doc: dict, settings: Settings, report: Report) -> list[tuple[str, str, str]] | None:
    """Problems of a core kind; None if ``doc`` is not one kubernetes-validate knows."""
    group = doc["apiVersion"].rpartition("/")[0]
    if "." in group and not group.endswith(".k8s.io"):
        return None  # a custom resource's group (serving.kserve.io, argoproj.io, ...)
    try:
        import kubernetes_validate
    except ImportError:
        report.skipped.append("core kinds: kubernetes-validate is not installed")
        return [("", "cannot check a core kind: the kubernetes-validate package is missing "
                 "(pip install kubernetes-validate)", "core")]
    from kubernetes_validate.utils import VersionNotSupportedError

    try:
        kubernetes_validate.validate(doc, settings.kubernetes_version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return None
    except VersionNotSupportedError as err:
        raise PromotionError(f"kubernetes-validate has no schemas for Kubernetes {settings.kubernetes_version}",
                             hint="set MLOPS_CI_KUBERNETES_VERSION to a version such as "
                                  f"{KUBERNETES_VERSION}, or upgrade kubernetes-validate") from err
    except kubernetes_validate.ValidationError as err:
        _note(report.checked, f"core {doc['kind']} (Kubernetes {settings.kubernetes_version})")
        return [(dotted(err.path), err.message, "core")]
    _note(report.checked, f"core {doc['kind']} (Kubernetes {settings.kubernetes_version})")
    return []


def _note(items: list[str], text: str) -> None:
    if text not in items:
        items.append(text)


def _crd_problems(doc: dict, crds: CrdIndex, report: Report) -> list[tuple[str, str, str]]:
    validator, source = crds.validator(doc["apiVersion"], doc["kind"])
    if validator is None:
        why = "MLOPS_CI_CRDS is not set" if not crds.paths else "no CRD for it under MLOPS_CI_CRDS"
        _note(report.skipped, f"CRD schema of {doc['kind']} ({doc['apiVersion']}): {why}")
        return []
    _note(report.checked, f"crd {doc['kind']} ({source.name})")
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [(dotted(e.absolute_path), e.message, "crd") for e in errors]


# ---------------------------------------------------------------------------------------------
# kustomize build of the environment, in a temporary copy


def kustomize_command(settings: Settings) -> list[str] | None:
    """The command that builds a kustomization folder (appended); None if nothing to run it with."""
    choice = settings.kustomize
    candidates = [choice] if choice else ["kubectl", "kustomize"]
    for name in candidates:
        found = shutil.which(name) if os.sep not in name else (name if os.access(name, os.X_OK) else None)
        if found:
            return [found, "build"] if Path(found).name.startswith("kustomize") else [found, "kustomize"]
    return None


def _kustomize(files: Mapping[str, bytes | None], env_dir: str, report: Report, settings: Settings,
               checkout_dir: Path | None, read: Reader | None) -> None:
    if settings.kustomize == "skip":
        report.skipped.append(f"kustomize build of {env_dir}: MLOPS_CI_KUSTOMIZE=skip")
        return
    command = kustomize_command(settings)
    if command is None:
        raise PromotionError(
            f"cannot build {env_dir} with kustomize before committing: "
            + (f"{settings.kustomize!r} (MLOPS_CI_KUSTOMIZE) is not an executable" if settings.kustomize
               else "neither kubectl nor kustomize is on PATH"),
            hint="install kubectl (e.g. `apt-get install kubernetes-client`, or "
                 "https://kubernetes.io/docs/tasks/tools/), or set MLOPS_CI_KUSTOMIZE to its path; "
                 "MLOPS_CI_KUSTOMIZE=skip leaves this check out")
    with tempfile.TemporaryDirectory(prefix="mlops-ci-validate-") as tmp:
        work = Path(tmp) / "repo"
        if checkout_dir is not None:
            shutil.copytree(checkout_dir, work, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        else:
            work.mkdir()
            if read is not None:
                _materialize(work, env_dir, read)
        for rel, data in files.items():
            target = (work / rel).resolve()
            if work.resolve() not in target.parents:
                raise PromotionError(f"refusing to validate {rel!r}: outside the GitOps checkout")
            if data is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        folder = work / env_dir
        try:
            proc = subprocess.run([*command, str(folder)], capture_output=True, text=True,
                                  timeout=KUSTOMIZE_TIMEOUT_S, cwd=tmp)
        except subprocess.TimeoutExpired:
            report.problems.append(Problem(env_dir, "", "", f"`{' '.join(command)}` took more than "
                                           f"{KUSTOMIZE_TIMEOUT_S} s", "kustomize"))
            return
        report.checked.append(f"{Path(command[0]).name} {command[1]} {env_dir}")
        if proc.returncode != 0:
            text = (proc.stderr or proc.stdout).replace(str(work.resolve()) + os.sep, "")
            text = text.replace(str(work) + os.sep, "").strip()
            report.problems.append(Problem(env_dir, "", "", f"`{Path(command[0]).name} {command[1]}` failed: "
                                           f"{_kustomize_error(text)}", "kustomize"))


KLOG = re.compile(r'^[EWIF]\d{4} [\d:.]+\s+\d+ \S+\] "command failed" err="(.*)"$', re.S)


def _kustomize_error(text: str) -> str:
    """kustomize's nested error, its innermost cause (at the end) kept when it must be shortened."""
    line = text.splitlines()[-1] if text else "no output"
    match = KLOG.match(line)
    line = " ".join((match.group(1) if match else line).split())
    return line if len(line) <= 2 * MAX_MESSAGE else "..." + line[-2 * MAX_MESSAGE:]


def _materialize(work: Path, env_dir: str, read: Reader, limit: int = 500) -> None:
    """Without a local checkout: the kustomizations reachable from ``env_dir`` and what they list."""
    from ruamel.yaml.error import YAMLError

    queue, seen = [env_dir], set()
    while queue and len(seen) < limit:
        folder = queue.pop()
        if folder in seen:
            continue
        seen.add(folder)
        for name in KUSTOMIZATIONS:
            data = read(posixpath.join(folder, name))
            if data is not None:
                break
        else:
            continue
        _write_inside(work, posixpath.join(folder, name), data)
        try:
            doc = yamlio.load(data)
        except (UnicodeDecodeError, YAMLError):  # the kustomize build reports the broken file
            continue
        for entry in (doc.get("resources") or []) if isinstance(doc, dict) else []:
            if not isinstance(entry, str) or "://" in entry:
                continue
            target = posixpath.normpath(posixpath.join(folder, entry))
            if target.startswith("../") or target.startswith("/"):
                continue
            if target.endswith((".yaml", ".yml", ".json")):
                content = read(target)
                if content is not None:
                    _write_inside(work, target, content)
            else:
                queue.append(target)


def _write_inside(work: Path, rel: str, data: bytes) -> None:
    target = (work / rel).resolve()
    if work.resolve() in target.parents:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

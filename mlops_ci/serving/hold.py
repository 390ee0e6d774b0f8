"""The hold marker `mlops-ci rollback` leaves in the GitOps repository.

    <gitops.path>/<env>/<model>/.mlops-ci-hold.yaml

While it exists, `mlops-ci promote` of that model to that environment is refused (a dry run,
such as a pull request's deployment plan, still renders, with ``on_hold`` set in its record);
`mlops-ci rollback --clear-hold` removes it in a commit, `mlops-ci promote --force --reason`
goes past it once (recorded: ``on_hold`` and a ``Hold-Overridden`` trailer) and leaves it in place. Kustomize only builds the resources a
kustomization lists, so the marker is never applied to a cluster.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime

from mlops_ci.serving import layout, yamlio

FILENAME = ".mlops-ci-hold.yaml"
FORMAT = 1


def path(root: str, env: str, model: str) -> str:
    return posixpath.join(layout.model_dir(root, env, model), FILENAME)


def clear_command(model: str, env: str) -> str:
    return f"mlops-ci rollback --clear-hold --model {model} --env {env} --reason TEXT"


@dataclass(frozen=True)
class Hold:
    model: str
    env: str
    version: str  # the version held in place
    rollback_of: str  # the version rolled back from
    held_by: str
    held_at: str  # ISO 8601, UTC
    reason: str

    def describe(self) -> str:
        return f"v{self.version} held by {self.held_by} at {self.held_at}: {self.reason}"


def new(model: str, env: str, version: str, rollback_of: str, held_by: str, reason: str | None) -> Hold:
    return Hold(model=model, env=env, version=version, rollback_of=rollback_of, held_by=held_by or "unknown",
                held_at=datetime.now(UTC).isoformat(timespec="seconds"),
                reason=one_line(reason) or "no reason given")


def one_line(text: str | None, limit: int = 200) -> str:
    return " ".join((text or "").split())[:limit]


def render(h: Hold) -> bytes:
    head = (f"# Automatic promotion of {h.model} to {h.env} is on hold (written by `mlops-ci rollback`).\n"
            f"# Release it with: {clear_command(h.model, h.env)}\n")
    body = yamlio.dump({"format": FORMAT, "model": h.model, "environment": h.env, "version": h.version,
                        "rollback_of": h.rollback_of, "held_by": h.held_by, "held_at": h.held_at,
                        "reason": h.reason})
    return head.encode() + body


def parse(data: bytes) -> Hold | None:
    """The hold in a marker file; None if it cannot be read (the file still holds: it exists)."""
    from ruamel.yaml.error import YAMLError

    try:
        doc = yamlio.load(data)
    except (UnicodeDecodeError, YAMLError):
        return None
    if not isinstance(doc, dict):
        return None
    return Hold(**{field: str(doc.get(key, "") or "?") for field, key in
                   (("model", "model"), ("env", "environment"), ("version", "version"),
                    ("rollback_of", "rollback_of"), ("held_by", "held_by"), ("held_at", "held_at"),
                    ("reason", "reason"))})

"""A rollout step in the InferenceService: the candidate as a canary beside the primary.

The manifest itself holds the rollout's state, in the annotation ``mlops-ci.dev/rollout``
(a JSON object: the version rolled out, the primary it goes beside, the step, how many there
are, the canary's percent and when the step started), so that ``mlops-ci rollout advance`` needs
nothing but the GitOps repository to know where a rollout stands.

KServe's two modes split traffic differently, and the file says each the way KServe reads it:

- Serverless: ``spec.predictor`` is the candidate with ``canaryTrafficPercent``; Knative keeps
  the previous revision (the primary) for the rest of the traffic. The metadata pins the
  candidate, as the predictor does.
- RawDeployment (KServe 0.20): ``spec.predictor`` stays the primary, untouched but for its
  version label, and ``spec.canary`` holds the candidate's predictor with ``trafficPercent``.
  The metadata still pins the primary.

The full promotion is an ordinary promotion render of the candidate: it drops the annotation,
``canaryTrafficPercent`` and ``spec.canary``. An abort restores the bytes from before the first
step (mlops_ci.stages.rollback's revert).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from mlops_ci.config.schema import InferenceServiceServing
from mlops_ci.serving import kserve, layout, yamlio

ROLLOUT = f"{kserve.LABEL_PREFIX}/rollout"
CONTAINER = "kserve-container"


@dataclass(frozen=True)
class Step:
    """Where a rollout stands, as the manifest's annotation holds it."""

    version: str  # the candidate
    primary: str  # the version it goes beside (and that an abort restores)
    step: int  # 1-based
    steps: int
    canary: int  # percent
    started: str  # ISO 8601, UTC

    @property
    def started_at(self) -> datetime:
        return datetime.fromisoformat(self.started)

    def describe(self) -> str:
        return f"step {self.step}/{self.steps}: v{self.version} takes {self.canary}% beside v{self.primary}"

    def annotation(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def state(data: bytes | None) -> Step | None:
    """The rollout a workload manifest is in (None: none, or an annotation that is not ours)."""
    if data is None:
        return None
    doc = yamlio.load(data)
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    text = ((meta.get("annotations") if isinstance(meta, dict) else None) or {}).get(ROLLOUT)
    if not isinstance(text, str):
        return None
    try:
        raw = json.loads(text)
        step = Step(version=str(raw["version"]), primary=str(raw["primary"]), step=int(raw["step"]),
                    steps=int(raw["steps"]), canary=int(raw["canary"]), started=str(raw["started"]))
        step.started_at  # noqa: B018 - a time that does not parse is not our annotation
    except (ValueError, KeyError, TypeError):
        return None
    return step


def deployment_mode(data: bytes | None) -> str | None:
    """The KServe deployment mode a manifest we wrote says (its annotation), or None."""
    doc = yamlio.load(data) if data is not None else None
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    mode = ((meta.get("annotations") if isinstance(meta, dict) else None) or {}).get(kserve.DEPLOYMENT_MODE)
    return str(mode) if mode else None


def serving_version(data: bytes | None) -> str | None:
    """The version that serves (most of) the traffic: during a rollout its primary, else the pinned one."""
    step = state(data)
    if step is not None:
        return step.primary
    pinned = layout.pinned(data)
    return pinned[0] if pinned else None


def render_step(current: bytes, candidate: kserve.ServedVersion, serving: InferenceServiceServing,
                step: Step) -> bytes:
    """``current`` (the InferenceService serving the primary, or an earlier step) at ``step``."""
    doc = yamlio.load(current)
    if serving.deployment_mode == "Serverless":
        split = serving.model_copy(update={"canary_percent": step.canary})
        owned = kserve.owned_fields(candidate, split, track="canary")
        owned["metadata"]["annotations"][ROLLOUT] = step.annotation()
        yamlio.drop_unowned(doc, owned, kserve.LABEL_PREFIX + "/")
        yamlio.merge_owned(doc, owned)
        return yamlio.dump(doc)
    canary = yamlio.prune(kserve.owned_fields(candidate, serving, track="canary"))["spec"]["predictor"]
    # spec.canary's model is a container and KServe's CRD requires its name: KServe's own container's
    canary["model"] = {"name": CONTAINER, **canary["model"]}
    owned: dict[str, Any] = {
        "metadata": {"annotations": {ROLLOUT: step.annotation()}},
        "spec": {"predictor": {"labels": {f"{kserve.LABEL_PREFIX}/model-version": step.primary}},
                 "canary": [{"predictor": canary, "trafficPercent": step.canary}]},
    }
    yamlio.merge_owned(doc, owned)
    return yamlio.dump(doc)


__all__ = ["CONTAINER", "ROLLOUT", "Step", "deployment_mode", "render_step", "serving_version", "state"]

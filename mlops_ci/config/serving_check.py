"""`serving.check`: the serving check's sample, load and gates.

The check serves the candidate (and the champion) in the runtime KServe runs for the model
(mlops_ci.runtime), sends a sample of the eval rows, then grades what it measured. Every
``Threshold`` here warns at or above ``warn`` and fails at or above ``fail``, like the data
checks; a level left out keeps its default, null turns it off.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, model_validator

from mlops_ci.config.base import Strict, Threshold, setting_errors

_PARTIAL = "; a level left out keeps this default, null turns it off"


class ServingCheck(Strict):
    """Serve the candidate as it will be served, before anything is registered or promoted."""

    enabled: bool = Field(default=True, description="run the serving check (kind inferenceservice with "
                          "modelFormat mlflow over v2: MLServer; any other runtime is skipped with the reason)")
    sample_rows: int = Field(default=100, ge=1, le=10_000, description="eval rows sent one per request for the "
                             "parity check (the first rows with no missing value)")
    requests: int = Field(default=400, ge=20, le=100_000, description="requests sent for the latency "
                          "measurement, cycling over the sample rows (a p99 of a few hundred is noisy: the "
                          "ratio to the champion only warns by default)")
    concurrency: int = Field(default=4, ge=1, le=64, description="requests in flight at once (a closed loop: "
                             "each client sends its next request when the last one is answered)")
    tolerance: float = Field(default=1e-6, ge=0, description="parity: a served output may differ from the "
                             "evaluation's pyfunc output by this much, times max(1, |expected|)")
    max_p99_ms: Threshold = Field(default=Threshold(), description="the candidate's p99 latency in "
                                  "milliseconds" + _PARTIAL)
    max_latency_ratio: Threshold = Field(default=Threshold(warn=1.5), description="the candidate's p99 over "
                                         "the champion's, measured in the same run" + _PARTIAL)
    max_memory_share: Threshold = Field(default=Threshold(warn=0.8, fail=1.0), description="peak memory "
                                        "of the runtime (every process, a shared page once) over "
                                        "serving.limits.memory; at 1.0 the pod would be OOMKilled" + _PARTIAL)
    max_cold_start_s: Threshold = Field(default=Threshold(warn=60.0), description="seconds from starting the "
                                        "runtime to the model being ready (what a request waits for after a "
                                        "scale from zero)" + _PARTIAL)
    ready_timeout_s: float = Field(default=180.0, gt=0, le=3600, description="a runtime not ready after this "
                                   "long fails the check, with the tail of its log")

    @model_validator(mode="after")
    def _levels_make_sense(self) -> ServingCheck:
        problems: list[tuple[str, Any, str]] = []
        for name in ("max_p99_ms", "max_latency_ratio", "max_memory_share", "max_cold_start_s"):
            th: Threshold = getattr(self, name)
            if th.warn is not None and th.fail is not None and th.warn > th.fail:
                problems.append((name, th.model_dump(), f"warn {th.warn:g} is above fail {th.fail:g}: a value "
                                 "would fail before it warns; swap them"))
        share = self.max_memory_share
        if any(level is not None and level > 4 for level in (share.warn, share.fail)):
            problems.append(("max_memory_share", share.model_dump(), "a share of limits.memory: 0.8 is 80%, and "
                             "1.0 is the limit itself (where the pod is OOMKilled)"))
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, setting_errors(problems))
        return self

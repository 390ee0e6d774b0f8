"""Monitoring what is served: KServe's payload logs read back as traffic.

``logs`` reads the objects KServe's logger writes to storage (its JSON and Parquet marshallers,
its object layout), skipping what cannot be read with a finding; ``traffic`` decodes the V2
bodies into feature rows and pairs each request with its response by id; ``labels`` joins ground
truth that arrives later; ``store`` writes the same layout; ``receiver`` (with ``cloudevent``,
one event checked, ``http1``, the HTTP it speaks, and ``segments``, its buffer and writer: group
commit) accepts the logger's CloudEvents for installs that log to a URL and writes that layout,
acknowledging an event only once it is durable; ``windows`` compares each window of
traffic (as a frame, when labels are joined) with the reference a version stored at registration
(mlops_ci.stages.reference); ``stream`` (with ``bulk``, the fast V2 decoder, and
``stream_merge``, shards merged and graded) does the same object by object with memory bounded by
the profiles, and its per-window profiles merge exactly, so a window can be fanned out. The
orchestration (the served version, the issue, the retraining pull request) is above, in
mlops_ci.stages.monitor, mlops_ci.stages.retrain and mlops_ci.pipeline.monitor.
"""

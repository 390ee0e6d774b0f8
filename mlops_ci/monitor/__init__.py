"""Monitoring what is served: KServe's payload logs read back as traffic.

``logs`` reads the objects KServe's logger writes to storage (its JSON and Parquet marshallers,
its object layout), skipping what cannot be read with a finding; ``traffic`` decodes the V2
bodies into feature rows and pairs each request with its response by id; ``store`` writes the same
layout; ``windows`` compares each window of traffic with the reference a version stored at
registration (mlops_ci.stages.reference). The ``monitor`` command, the monitoring issue and the
retraining pull request build on these (issue "Watch what is served", in progress).
"""

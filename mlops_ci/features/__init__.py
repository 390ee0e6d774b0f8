"""The feature store as code: a Feast feature repository (``feature_store.yaml`` and its definitions)
planned, applied and read like the rest of the repository.

Feast runs in its own pinned environment (``env``: built once under the cache) and is driven by a
worker there (``feast_worker/``: one JSON request, one JSON answer, or a batch of them in one
process); the core speaks to it through ``store``, which returns frozen dataclasses and never
imports Feast. ``diff`` compares the base's and the head's definitions, ``data`` names data read
from the store, ``plan_text`` renders `feast plan`'s diff.
"""

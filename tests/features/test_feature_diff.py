"""What a change does to the feature definitions (mlops_ci.features.diff), on the worker's
`describe` answers: which changes break a reader, which models a change touches, and the
service's version."""

from __future__ import annotations

import copy

from mlops_ci.features import diff

BASE = {
    "project": "p",
    "entities": {"customer": {"join_keys": ["customer_id"], "value_type": "INT64"}},
    "views": {
        "profile": {"kind": "batch", "entities": ["customer"], "fields": {"tenure": "Int64", "plan": "String"},
                    "ttl_s": 86400.0, "online": True, "source": {"name": "p_src", "path": "data/p.parquet"}},
        "usage": {"kind": "batch", "entities": ["customer"], "fields": {"minutes": "Float32", "calls": "Int64"},
                  "ttl_s": 86400.0, "online": True, "source": {"name": "u_src", "path": "data/u.parquet"}},
    },
    "services": {"churn_v1": {"views": {"profile": ["tenure"], "usage": ["minutes", "calls"]}},
                 "other": {"views": {"profile": ["plan"]}}},
    "source_files": {"data/p.parquet": "aa", "data/u.parquet": "bb"},
}


def changed(**edits):
    head = copy.deepcopy(BASE)
    for path, value in edits.items():
        *keys, last = path.split("__")
        target = head
        for k in keys:
            target = target[k]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return head


def test_nothing_changed_is_no_change_and_the_same_version():
    assert diff.compare(BASE, copy.deepcopy(BASE)) == []
    assert diff.service_version(BASE, "churn_v1") == diff.service_version(copy.deepcopy(BASE), "churn_v1")
    assert diff.service_version(BASE, "missing") is None


def test_a_field_added_touches_the_readers_of_its_view_and_breaks_nobody():
    head = changed(views__usage__fields={"minutes": "Float32", "calls": "Int64", "sms": "Int64"})
    changes = diff.compare(BASE, head)
    assert [(c.kind, c.name, c.change, c.details, c.breaking) for c in changes] == [
        ("view", "usage", "changed", ["field sms added (Int64)"], [])]
    assert diff.affecting(changes, BASE, head, "churn_v1") == ["feature view usage changed"]
    assert diff.affecting(changes, BASE, head, "other") == []  # it reads profile only
    assert diff.breaking_for(changes, BASE, "churn_v1") == []
    assert diff.service_version(head, "churn_v1") != diff.service_version(BASE, "churn_v1")
    assert diff.service_version(head, "other") == diff.service_version(BASE, "other")


def test_a_field_removed_or_retyped_breaks_only_a_service_that_reads_it():
    head = changed(views__profile__fields={"tenure": "Float64"})  # plan removed, tenure retyped
    changes = diff.compare(BASE, head)
    assert changes[0].breaking == ["field plan removed", "field tenure retyped (Int64 -> Float64)"]
    assert diff.breaking_for(changes, BASE, "churn_v1") == [("profile", "field tenure retyped (Int64 -> Float64)")]
    assert diff.breaking_for(changes, BASE, "other") == [("profile", "field plan removed")]


def test_a_new_versioned_view_breaks_nobody_and_a_removed_view_breaks_its_readers():
    v2 = copy.deepcopy(BASE["views"]["usage"])
    v2["fields"] = {"minutes": "Float64"}
    head = changed(views__usage_v2=v2)
    changes = diff.compare(BASE, head)
    assert [(c.name, c.change, c.breaking) for c in changes] == [("usage_v2", "added", [])]
    assert diff.breaking_for(changes, BASE, "churn_v1") == []
    gone = changed(views__usage=None)
    assert diff.breaking_for(diff.compare(BASE, gone), BASE, "churn_v1") == [("usage", "view removed")]


def test_an_entity_s_join_key_changed_breaks_every_view_a_service_reads_through_it():
    head = changed(entities__customer={"join_keys": ["account_id"], "value_type": "INT64"})
    changes = diff.compare(BASE, head)
    assert [(c.kind, c.name) for c in changes] == [("entity", "customer")]
    assert sorted(v for v, _ in diff.breaking_for(changes, BASE, "churn_v1")) == ["profile", "usage"]


def test_new_source_data_changes_the_service_version_and_touches_its_readers():
    head = changed(source_files={"data/p.parquet": "aa", "data/u.parquet": "cc"})
    changes = diff.compare(BASE, head)
    assert [(c.name, c.details) for c in changes] == [("usage", ["source data data/u.parquet changed"])]
    assert diff.service_version(head, "churn_v1") != diff.service_version(BASE, "churn_v1")
    assert diff.affecting(changes, BASE, head, "churn_v1") == ["feature view usage changed"]


def test_the_plan_text_drops_feast_s_own_timestamps_and_shows_where_a_long_value_differs():
    from types import SimpleNamespace as NS

    from mlops_ci.features import plan_text

    stamp = 'batch_source: type: BATCH_FILE meta { created_timestamp { seconds: %d } last_updated_timestamp { seconds: %d } }'
    long_before = "[" + ", ".join(f'feature_columns {{ name: "f{i}" value_type: INT64 }}' for i in range(20)) + "]"
    long_after = long_before[:-1] + ', feature_columns { name: "discount" value_type: DOUBLE }]'
    objects = [
        NS(type="feature view", name="noise", transition="UPDATE",
           changes=[NS(property="batch_source", before=stamp % (1, 2), after=stamp % (3, 4))]),
        NS(type="feature service", name="churn_v1", transition="UPDATE",
           changes=[NS(property="features", before=long_before, after=long_after)]),
        NS(type="feature view", name="new", transition="CREATE", changes=[]),
        NS(type="entity", name="customer", transition="UNCHANGED", changes=[]),
    ]
    text, counts = plan_text.render(objects)
    assert counts == {"UPDATE": 1, "CREATE": 1}
    lines = text.splitlines()
    assert lines[0] == "~ feature service churn_v1" and lines[-1] == "+ feature view new"
    assert "noise" not in text and "seconds" not in text
    assert 'name: "discount" value_type: DOUBLE' in lines[1] and lines[1].startswith("    features: … ")
    assert len(lines[1]) < 2 * plan_text.MAX_VALUE

"""The Feast worker through mlops_ci.features.store, with real Feast (0.67, its environment built once
under the tests' shared cache, half a minute to a minute): a tiny feature repository generated here
(local provider, file offline store, SQLite online store; a customer entity, two feature views over
one Parquet source and a feature service reading some fields of both).

Each worker call imports Feast (~4 s): the repository, the entity table and the single calls that
many() is compared with are made once per module where the tests only read them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from conftest import SHARED_CACHE

from mlops_ci.errors import DataError, InputError, NotFound
from mlops_ci.features import store
from mlops_ci.features.env import ensure_env
from mlops_ci.toolenv import WorkerExited, call

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(days=20)  # every customer's first row
T1 = NOW - timedelta(days=15)
T2 = NOW - timedelta(days=10)  # customer 1 moves to the pro plan
T3 = NOW - timedelta(days=5)

FEATURE_STORE_YAML = """\
project: churn
provider: local
registry: data/registry.db
online_store:
  type: sqlite
  path: data/online.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""

HEADER = '''\
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float32, Int64, String

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
stats = FileSource(name="customer_stats", path="data/customers.parquet", timestamp_field="event_timestamp",
                   created_timestamp_column="created")
'''

PROFILE = '''
customer_profile = FeatureView(name="customer_profile", entities=[customer], ttl=timedelta(days=30), source=stats,
                               schema=[Field(name="tenure", dtype=Int64), Field(name="plan", dtype=String)])
'''

TYPES = {"minutes": "Float32", "calls": "Int64", "sms": "Int64"}


def definitions(*, usage: tuple[str, ...] = ("minutes", "calls"), profile: bool = True) -> str:
    fields = ", ".join(f'Field(name="{f}", dtype={TYPES[f]})' for f in usage)
    reads = ('customer_profile[["tenure", "plan"]], ' if profile else "") + 'customer_usage[["minutes"]]'
    return (HEADER + (PROFILE if profile else "")
            + f'\ncustomer_usage = FeatureView(name="customer_usage", entities=[customer], ttl=timedelta(days=30), '
            f"source=stats,\n                             schema=[{fields}])\n"
            + f'\nchurn_v1 = FeatureService(name="churn_v1", features=[{reads}])\n')


def stats_frame() -> pd.DataFrame:
    rows = [(c, T0, c, "basic", 10.1 * c, 2 * c, c) for c in range(1, 7)]
    rows.append((1, T2, 100, "pro", 99.9, 50, 7))
    frame = pd.DataFrame(rows, columns=["customer_id", "event_timestamp", "tenure", "plan", "minutes", "calls", "sms"])
    return frame.assign(created=frame.event_timestamp)


def make_repo(root: Path) -> Path:
    repo = root / "feature_repo"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    (repo / "definitions.py").write_text(definitions())
    stats_frame().to_parquet(repo / "data" / "customers.parquet", index=False)
    return repo


def untouched(repo: Path) -> bool:
    """Nothing but what make_repo wrote: no registry, no online store, no __pycache__."""
    return sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")) == [
        "data", "data/customers.parquet", "definitions.py", "feature_store.yaml"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """The keyword arguments every store call takes: the environment (built once) and a log folder."""
    return {"env": ensure_env(cache_dir=SHARED_CACHE), "log_dir": tmp_path_factory.mktemp("feast-logs")}


@pytest.fixture(scope="module")
def shared_repo(tmp_path_factory) -> Path:
    """A repository the tests only read (describe, plan, historical)."""
    return make_repo(tmp_path_factory.mktemp("shared"))


@pytest.fixture(scope="module")
def described(shared_repo, run) -> store.Definitions:
    return store.describe(shared_repo, **run)


@pytest.fixture(scope="module")
def staging(tmp_path_factory) -> dict[str, Path]:
    """A staging environment's registry and online store, neither of which exists."""
    folder = tmp_path_factory.mktemp("plan") / "staging"
    return {"registry": folder / "registry.db", "online_store": folder / "online.db"}


@pytest.fixture(scope="module")
def planned(shared_repo, staging, run) -> store.Plan:
    return store.plan(shared_repo, **staging, **run)


# --- describe ----------------------------------------------------------------------------------

def test_describe_lists_views_fields_types_and_what_each_service_reads(shared_repo, described):
    found = described
    assert found.project == "churn"
    assert found.entities == {"customer": store.EntityDef(join_keys=("customer_id",), value_type="INT64")}
    assert set(found.views) == {"customer_profile", "customer_usage"}
    profile, usage = found.views["customer_profile"], found.views["customer_usage"]
    assert profile.fields == {"tenure": "Int64", "plan": "String"}
    assert usage.fields == {"minutes": "Float32", "calls": "Int64"}
    assert (usage.kind, usage.entities, usage.ttl_s, usage.online) == ("batch", ("customer",), 30 * 86400.0, True)
    assert usage.source == store.SourceDef(name="customer_stats", path="data/customers.parquet",
                                           timestamp_field="event_timestamp")
    assert found.services == {"churn_v1": store.ServiceDef(views={"customer_profile": ("tenure", "plan"),
                                                                  "customer_usage": ("minutes",)})}
    digest = hashlib.sha256((shared_repo / "data" / "customers.parquet").read_bytes()).hexdigest()
    assert found.source_files == {"data/customers.parquet": digest}
    assert found.as_json()["views"]["customer_usage"]["fields"] == {"minutes": "Float32", "calls": "Int64"}
    assert untouched(shared_repo)


def test_a_definition_with_a_syntax_error_fails_naming_its_file_and_line(tmp_path, run):
    repo = make_repo(tmp_path)
    (repo / "broken.py").write_text('from feast import Entity\n\noops = Entity(name="oops", join_keys=["id"]\n')
    with pytest.raises(InputError) as failed:
        store.describe(repo, **run)
    err = failed.value
    assert (err.kind, err.file, err.line) == ("definitions", "broken.py", 3)
    assert "broken.py:3: SyntaxError" in err.message
    assert "\n" not in err.message and "Traceback" not in err.message


# --- plan and apply ----------------------------------------------------------------------------

def test_plan_against_a_missing_registry_creates_everything_and_writes_nothing(shared_repo, staging, planned):
    assert {(o.type, o.name): o.transition for o in planned.objects} == {
        ("project", "churn"): "CREATE", ("data source", "customer_stats"): "CREATE",
        ("entity", "customer"): "CREATE", ("feature view", "customer_profile"): "CREATE",
        ("feature view", "customer_usage"): "CREATE", ("feature service", "churn_v1"): "CREATE"}
    assert "Created feature view customer_usage" in planned.registry_diff
    assert "Created sqlite table churn_customer_usage" in planned.infra_diff
    assert "\x1b" not in planned.registry_diff + planned.infra_diff  # no colours
    assert not staging["registry"].parent.exists()  # neither the registry nor the online store, nor their folder
    assert untouched(shared_repo)


def test_plan_after_apply_shows_a_new_field_as_update_and_a_removed_view_as_delete(tmp_path, run):
    repo = make_repo(tmp_path)
    (tmp_path / "prod").mkdir()
    registry, online = tmp_path / "prod" / "registry.db", tmp_path / "prod" / "online.db"
    applied = store.apply(repo, registry=registry, online_store=online, **run)
    assert {o.transition for o in applied.objects} == {"CREATE"} and applied.materialized == ()
    assert registry.is_file() and online.is_file()
    assert not (repo / "data" / "registry.db").exists()  # the override, not feature_store.yaml's
    before = registry.read_bytes()

    # two pull requests' definitions, planned in one worker (one Feast import)
    removed = tmp_path / "removed"
    shutil.copytree(repo, removed)
    (removed / "definitions.py").write_text(definitions(profile=False))
    (repo / "definitions.py").write_text(definitions(usage=("minutes", "calls", "sms")))
    planned, planned_removed = store.many([("plan", {"repo": repo, "registry": registry, "online_store": online}),
                                           ("plan", {"repo": removed, "registry": registry, "online_store": online})],
                                          **run)
    assert planned.transition("customer_usage") == "UPDATE"
    assert {o.name for o in planned.changed} == {"customer_usage"}
    assert planned.transition("customer_profile") == planned.transition("churn_v1") == "UNCHANGED"
    [usage] = planned.changed
    assert any(c.property in ("features", "schema") and "sms" in c.after and "sms" not in c.before
               for c in usage.changes), usage.changes
    assert "Updated feature view customer_usage" in planned.registry_diff

    planned = planned_removed
    assert planned.transition("customer_profile") == "DELETE"
    assert planned.transition("customer_usage") == "UNCHANGED"
    assert planned.transition("churn_v1") == "UPDATE"
    assert "Deleted feature view customer_profile" in planned.registry_diff
    assert registry.read_bytes() == before  # planning never writes the registry


# --- skew --------------------------------------------------------------------------------------

def test_skew_is_zero_after_materialising_and_finds_a_late_correction_the_online_store_missed(tmp_path, run):
    repo = make_repo(tmp_path)
    (tmp_path / "prod").mkdir()
    env = {"registry": tmp_path / "prod" / "registry.db", "online_store": tmp_path / "prod" / "online.db"}
    entities = tmp_path / "entities.parquet"
    keys = list(range(1, 7)) * 2  # repeated keys: the sample is of distinct entities
    pd.DataFrame({"customer_id": keys, "event_timestamp": [NOW] * len(keys)}).to_parquet(entities, index=False)
    applied, clean = store.many([  # in one worker, in order: apply and materialise, then compare
        ("apply", {"repo": repo, "materialize": store.Materialize(end=datetime.now(UTC)), **env}),
        ("skew", {"repo": repo, "service": "churn_v1", "entities": entities, "sample": 100, "seed": 7, **env})], **run)
    assert applied.materialized == ("customer_profile", "customer_usage")
    assert (clean.checked, clean.mismatch_count, clean.mismatches) == (6, 0, ())
    assert clean.features == ("customer_profile:tenure", "customer_profile:plan", "customer_usage:minutes")

    # a late correction: the same event time, a later created time, and the online store never reloaded
    frame = stats_frame()
    fixed = frame[frame.customer_id.isin([2, 4]) & (frame.event_timestamp == T0)].copy()
    fixed["created"] = T0 + timedelta(hours=1)
    fixed.loc[fixed.customer_id == 2, "minutes"] = 555.5
    fixed.loc[fixed.customer_id == 4, "plan"] = "gold"
    pd.concat([frame, fixed]).to_parquet(repo / "data" / "customers.parquet", index=False)

    skewed, scratch = store.many([
        ("skew", {"repo": repo, "service": "churn_v1", "entities": entities, "sample": 100, "seed": 7, **env}),
        ("skew", {"repo": repo, "service": "churn_v1", "entities": entities, "sample": 3, "seed": 7,
                  "scratch": tmp_path / "scratch"})], **run)
    assert skewed.mismatch_count == 2
    found = {(m.entity["customer_id"], m.feature): (m.online, m.offline) for m in skewed.mismatches}
    assert set(found) == {(2, "customer_usage:minutes"), (4, "customer_profile:plan")}
    assert found[2, "customer_usage:minutes"] == (pytest.approx(20.2), 555.5)
    assert found[4, "customer_profile:plan"] == ("basic", "gold")

    # a scratch store materialised from the corrected source has no skew
    assert (scratch.checked, scratch.mismatch_count, scratch.at) == (3, 0, NOW)


# --- historical --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def entity_table(shared_repo) -> Path:
    """Out of order on purpose; customer 1 before and after its change at T2; customer 9 unknown."""
    path = shared_repo.parent / "entities.parquet"
    pd.DataFrame({"customer_id": [1, 3, 1, 2, 9], "event_timestamp": [T3, T1, T1, T3, T3],
                  "churned": [1, 0, 0, 1, 0]}).to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def historical_one(shared_repo, entity_table, tmp_path_factory, run) -> store.HistoricalResult:
    out = tmp_path_factory.mktemp("historical") / "1.parquet"
    [one] = store.historical(shared_repo, service="churn_v1", jobs=[(entity_table, out)], **run)
    return one


def test_historical_is_point_in_time_in_row_order_and_byte_identical(
        shared_repo, entity_table, historical_one, tmp_path, run):
    naive = tmp_path / "naive.parquet"  # naive times are UTC, as Feast reads them
    frame = pd.read_parquet(entity_table)
    frame.assign(event_timestamp=frame.event_timestamp.dt.tz_localize(None)).to_parquet(naive, index=False)
    one, first, second, third = historical_one, historical_one.out, tmp_path / "2.parquet", tmp_path / "3.parquet"
    again = store.historical(shared_repo, service="churn_v1", jobs=[(entity_table, second), (naive, third)], **run)
    columns = ("customer_id", "event_timestamp", "churned", "tenure", "plan", "minutes")
    assert (one.out, one.rows, one.columns) == (first, 5, columns)
    assert [(r.rows, r.columns) for r in again] == [(5, columns), (5, columns)]

    out = pd.read_parquet(first)
    assert list(out.customer_id) == [1, 3, 1, 2, 9] and list(out.churned) == [1, 0, 0, 1, 0]
    assert list(out.event_timestamp) == [pd.Timestamp(t) for t in (T3, T1, T1, T3, T3)]
    assert list(out.tenure[:4]) == [100, 3, 1, 2] and pd.isna(out.tenure[4])  # 1 at T1 < T2: the old value
    assert list(out.plan[:4]) == ["pro", "basic", "basic", "basic"] and pd.isna(out.plan[4])
    assert list(out.minutes[:4]) == pytest.approx([99.9, 30.3, 10.1, 20.2])
    assert first.read_bytes() == second.read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(third), out)
    assert untouched(shared_repo)  # the throwaway registry was elsewhere


def test_historical_refuses_an_unknown_service_and_an_entity_table_without_its_join_key(
        shared_repo, entity_table, tmp_path, run):
    out = tmp_path / "out.parquet"
    renamed = tmp_path / "renamed.parquet"
    pd.read_parquet(entity_table).rename(columns={"customer_id": "cust"}).to_parquet(renamed, index=False)
    missing, unjoinable = store.many([  # one worker; each answer is what the single call would raise
        ("historical", {"repo": shared_repo, "service": "churn_v9", "jobs": [(entity_table, out)]}),
        ("historical", {"repo": shared_repo, "service": "churn_v1", "jobs": [(renamed, out)]})], **run)
    assert isinstance(missing, NotFound) and type(missing) is store.FeatureNotFound
    assert ("feature service 'churn_v9' is not defined in project churn (its feature services: churn_v1)"
            in missing.message)
    assert isinstance(unjoinable, DataError)
    assert "has no column customer_id: feature service churn_v1 joins on customer_id" in unjoinable.message
    assert not out.exists()


# --- many: several operations, one worker ------------------------------------------------------

def test_many_answers_each_call_as_its_function_would_in_one_worker(
        shared_repo, entity_table, staging, described, planned, historical_one, tmp_path, run):
    logs, out = tmp_path / "logs", tmp_path / "many.parquet"
    answers = store.many([
        ("describe", {"repo": shared_repo}),
        ("plan", {"repo": shared_repo, **staging}),
        ("historical", {"repo": shared_repo, "service": "churn_v1", "jobs": [(entity_table, out)]}),
        ("historical", {"repo": shared_repo, "service": "churn_v9", "jobs": [(entity_table, tmp_path / "no.parquet")]}),
        ("skew", {"repo": shared_repo, "service": "churn_v1", "entities": entity_table, "sample": 0}),
        ("describe", {"repo": shared_repo}),  # after a plan in the same process: the definitions imported afresh
    ], **{**run, "log_dir": logs})
    found, plan, [result], unknown, no_sample, again = answers
    assert found == described and again == described
    # Feast lists the objects of a plan in no fixed order
    assert sorted(plan.registry_diff.splitlines()) == sorted(planned.registry_diff.splitlines())
    assert sorted(plan.objects, key=repr) == sorted(planned.objects, key=repr)
    assert (result.out, result.rows, result.columns) == (out, historical_one.rows, historical_one.columns)
    assert out.read_bytes() == historical_one.out.read_bytes()
    assert type(unknown) is store.FeatureNotFound and unknown.kind == "not_found"  # returned, not raised
    assert "feature service 'churn_v9' is not defined in project churn" in unknown.message
    assert type(no_sample) is ValueError and "sample must be at least 1" in str(no_sample)  # no worker needed
    # one worker for all: one request of five operations (the sixth failed before), one answer, one log
    assert sorted(p.name for p in logs.iterdir()) == [
        "feast-batch.answer.json", "feast-batch.log", "feast-batch.request.json"]
    request = json.loads((logs / "feast-batch.request.json").read_text())
    assert [o["op"] for o in request["ops"]] == ["describe", "plan", "historical", "historical", "describe"]
    assert not staging["registry"].parent.exists() and untouched(shared_repo)
    assert store.many([], **run) == []
    with pytest.raises(ValueError, match="unknown feature store operation 'batch'"):
        store.many([("batch", {})], **run)


@pytest.mark.parametrize("ops, message", [
    ([{"op": "batch", "repo": "/r"}], "batch: ops[0]: unknown op 'batch'; known: describe, plan, apply,"),
    ([{"op": "describe", "repo": "/r"}, {"op": "historical", "repo": "/r", "service": 3, "jobs": []}],
     "batch: ops[1]: historical: service must be str, got 3"),
    ({"op": "describe"}, "batch: ops must be a list of requests"),
])
def test_a_malformed_batch_is_refused_whole(ops, message, tmp_path, run):
    request = {"protocol": store.PROTOCOL, "op": "batch", "response": str(tmp_path / "answer.json"), "ops": ops}
    with pytest.raises(WorkerExited) as exited:
        call(run["env"].python, store.WORKER, request, log=tmp_path / "log", timeout_s=120,
             request_path=tmp_path / "request.json", response_path=tmp_path / "answer.json")
    assert exited.value.code == store.EXIT_REQUEST and message in (tmp_path / "log").read_text()

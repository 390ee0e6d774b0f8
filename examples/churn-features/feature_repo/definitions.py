"""The churn features as code (Feast 0.67): one entity, two monthly snapshot tables, one service.

    customer (customer_id)
    ├── customer_profile   contract, plan, payment, region, tenure_months      <- data/customer_profile.parquet
    └── customer_billing   monthly_charges, support_calls, late_payments       <- data/customer_billing.parquet
    churn_v1 = customer_profile + customer_billing      (what the churn model trains on and is served with)

Every source row is a customer's snapshot at `event_timestamp` (the 1st of the month), exported at
`created`. get_historical_features joins each entity row to the newest snapshot at or before its
own event_timestamp (point in time) and no older than the view's ttl.

A field a served model reads is never removed or retyped in place: add a versioned view beside the
old one (customer_billing_v2), point a new service at it, and drop the old view once no served
version reads it. Adding a field is safe.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="a subscriber",
)

profile_source = FileSource(
    name="customer_profile_source",
    path="data/customer_profile.parquet",  # relative to this folder
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

billing_source = FileSource(
    name="customer_billing_source",
    path="data/customer_billing.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(days=120),
    schema=[
        Field(name="contract", dtype=String),
        Field(name="plan", dtype=String),
        Field(name="payment", dtype=String),
        Field(name="region", dtype=String),
        Field(name="tenure_months", dtype=Int64),
    ],
    online=True,
    source=profile_source,
    description="contract and account, a monthly snapshot",
)

customer_billing = FeatureView(
    name="customer_billing",
    entities=[customer],
    ttl=timedelta(days=120),
    schema=[
        Field(name="monthly_charges", dtype=Float64),
        Field(name="support_calls", dtype=Int64),
        Field(name="late_payments", dtype=Int64),
    ],
    online=True,
    source=billing_source,
    description="the month's bill, support calls and late payments",
)

churn_v1 = FeatureService(
    name="churn_v1",
    features=[customer_profile, customer_billing],
    description="the churn model's features",
)

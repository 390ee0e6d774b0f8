"""Generate a reproducible churn feature store: monthly feature snapshots and labelled entity tables.

    python generate_data.py                              # six monthly snapshots up to 2026-11
    python generate_data.py --month 2026-12 --seed 2 --price-increase 12
    python generate_data.py --discount                   # customer_billing gains a `discount` column

Writes the sources of the Feast feature views (feature_repo/data/, one row per customer and month):

    customer_profile.parquet  customer_id, event_timestamp, created, contract, plan, payment, region,
                              tenure_months
    customer_billing.parquet  customer_id, event_timestamp, created, monthly_charges, support_calls,
                              late_payments (and discount with --discount)

and the entity tables mlops-ci asks the store for training data with (data/, disjoint customers):

    train_entities.parquet / eval_entities.parquet   customer_id, event_timestamp, churned

Each entity row is one customer at a moment between two snapshots; its label was drawn from the
features *as of that moment* (the snapshot before it), so a point-in-time join gives the right
features and joining the newest values does not. The same arguments always give the same bytes
(with the same pyarrow: the Parquet footer names its version).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CONTRACTS = ["month-to-month", "one-year", "two-year"]
PLANS = ["basic", "standard", "premium"]
PAYMENTS = ["card", "bank-transfer", "electronic-check", "mailed-check"]
REGIONS = ["north", "south", "east", "west"]
BASE_PRICE = np.array([25.0, 55.0, 85.0])  # by plan
FIRST_ID = 10_001


def snapshot_times(month: str, months: int) -> pd.DatetimeIndex:
    """The 1st of each month at 00:00 UTC, the oldest first, ending with ``month``."""
    end = pd.Timestamp(f"{month}-01", tz="UTC")
    return pd.DatetimeIndex([end - pd.DateOffset(months=k) for k in range(months - 1, -1, -1)])


def simulate(customers: int, seed: int, months: int, price_increase: float) -> dict[str, np.ndarray]:
    """Every customer's features in every month (arrays shaped customers x months) and whether the
    customer had signed up by then."""
    rng = np.random.default_rng(seed)
    n, m = customers, months
    # tenure in the first month; negative: signs up during the window
    tenure0 = rng.integers(-(months - 1), 72, size=n)
    tenure = tenure0[:, None] + np.arange(m)[None, :]
    active = tenure >= 0

    contract = np.empty((n, m), dtype=np.int64)
    plan = np.empty((n, m), dtype=np.int64)
    payment = np.empty((n, m), dtype=np.int64)
    region = np.empty((n, m), dtype=np.int64)
    contract[:, 0] = rng.choice(3, size=n, p=[0.55, 0.25, 0.20])
    plan[:, 0] = rng.choice(3, size=n, p=[0.4, 0.35, 0.25])
    payment[:, 0] = rng.choice(4, size=n, p=[0.35, 0.25, 0.3, 0.1])
    region[:, 0] = rng.choice(4, size=n)
    for k in range(1, m):  # the profile moves: longer contracts, plan changes, new payment methods
        c = contract[:, k - 1].copy()
        c[(c == 0) & (rng.uniform(size=n) < 0.05)] = 1
        c[(c == 1) & (rng.uniform(size=n) < 0.02)] = 2
        contract[:, k] = c
        p = plan[:, k - 1].copy()
        move = rng.uniform(size=n) < 0.06
        p[move] = np.clip(p[move] + rng.choice([-1, 1], size=move.sum()), 0, 2)
        plan[:, k] = p
        pay = payment[:, k - 1].copy()
        switch = rng.uniform(size=n) < 0.04
        pay[switch] = rng.choice(4, size=switch.sum(), p=[0.35, 0.25, 0.3, 0.1])
        payment[:, k] = pay
        r = region[:, k - 1].copy()
        moved = rng.uniform(size=n) < 0.005
        r[moved] = rng.choice(4, size=moved.sum())
        region[:, k] = r

    # billing: the month's charges, support calls and late payments
    offset = rng.normal(0, 6, size=(n, 1))
    monthly = BASE_PRICE[plan] + offset + rng.normal(0, 2.5, size=(n, m))
    monthly[:, -1] += price_increase
    monthly = np.round(np.clip(monthly, 10, None), 2)
    frailty = rng.gamma(2.0, 0.5, size=(n, 1))  # some customers call support more than others
    support_calls = rng.poisson(0.4 * frailty + 0.5 * (plan == 0) + 0.2)
    late_payments = rng.poisson(0.1 + 0.45 * (payment == 2) + 0.15 * (payment == 3))

    return {"tenure": tenure, "active": active, "contract": contract, "plan": plan, "payment": payment,
            "region": region, "monthly": monthly, "support_calls": support_calls,
            "late_payments": late_payments}


def churn_logit(s: dict[str, np.ndarray]) -> np.ndarray:
    """The churn risk in each month, from that month's features only."""
    return (
        -1.7
        + 1.3 * (s["contract"] == 0)
        - 0.9 * (s["contract"] == 2)
        + 0.4 * (s["payment"] == 2)
        + 0.03 * (s["monthly"] - 55)
        - 0.03 * np.maximum(s["tenure"], 0)
        + 0.45 * s["support_calls"]
        + 0.45 * s["late_payments"]
    )


def feature_tables(s: dict[str, np.ndarray], times: pd.DatetimeIndex, discount: bool,
                   seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    n, m = s["tenure"].shape
    cust, month = np.nonzero(s["active"])  # row-major: by customer, then by month
    ts = times[month]
    created = ts + pd.Timedelta(hours=3)  # the export lands a few hours after the snapshot
    ids = (FIRST_ID + cust).astype(np.int64)
    pick = (cust, month)
    profile = pd.DataFrame({
        "customer_id": ids,
        "event_timestamp": ts,
        "created": created,
        "contract": np.array(CONTRACTS)[s["contract"][pick]],
        "plan": np.array(PLANS)[s["plan"][pick]],
        "payment": np.array(PAYMENTS)[s["payment"][pick]],
        "region": np.array(REGIONS)[s["region"][pick]],
        "tenure_months": s["tenure"][pick].astype(np.int64),
    })
    billing = pd.DataFrame({
        "customer_id": ids,
        "event_timestamp": ts,
        "created": created,
        "monthly_charges": s["monthly"][pick].astype(np.float64),
        "support_calls": s["support_calls"][pick].astype(np.int64),
        "late_payments": s["late_payments"][pick].astype(np.int64),
    })
    if discount:  # its own random stream: every other column stays byte for byte the same
        rng = np.random.default_rng([seed, 1])
        loyal = np.maximum(s["tenure"], 0) >= 24
        offered = loyal & (rng.uniform(size=(n, m)) < 0.6)
        share = np.where(offered, rng.choice([0.05, 0.1, 0.15], size=(n, m)), 0.0)
        billing["discount"] = share[pick].astype(np.float64)
    return profile, billing


def entity_tables(s: dict[str, np.ndarray], times: pd.DatetimeIndex, seed: int,
                  eval_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per customer: a moment after one of its snapshots (before the next) and the label
    drawn from that snapshot's features."""
    rng = np.random.default_rng([seed, 2])
    n, m = s["tenure"].shape
    first = np.argmax(s["active"], axis=1)  # every customer has signed up by the last month
    month = first + np.floor(rng.uniform(size=n) * (m - first)).astype(int)
    seconds = rng.integers(3600, 27 * 86400, size=n)  # 1 hour to 27 days after the snapshot
    ts = times[month] + pd.to_timedelta(seconds, unit="s")
    risk = churn_logit(s)[np.arange(n), month]
    churned = (rng.uniform(size=n) < 1 / (1 + np.exp(-risk))).astype(np.int64)
    frame = pd.DataFrame({"customer_id": (FIRST_ID + np.arange(n)).astype(np.int64),
                          "event_timestamp": ts, "churned": churned})
    is_eval = np.zeros(n, dtype=bool)
    is_eval[rng.permutation(n)[: int(n * eval_fraction)]] = True
    return frame[~is_eval].reset_index(drop=True), frame[is_eval].reset_index(drop=True)


def write(frame: pd.DataFrame, path: Path) -> None:
    """Parquet with plain Arrow types (string, int64, float64, timestamp[us, UTC]) and no pandas
    metadata: the same bytes whatever pandas wrote them, readable by the pandas Feast runs with."""
    fields = []
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.DatetimeTZDtype):
            fields.append(pa.field(name, pa.timestamp("us", tz="UTC")))
        elif pd.api.types.is_integer_dtype(dtype):
            fields.append(pa.field(name, pa.int64()))
        elif pd.api.types.is_float_dtype(dtype):
            fields.append(pa.field(name, pa.float64()))
        else:
            fields.append(pa.field(name, pa.string()))
    table = pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), path, compression="zstd")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--month", default="2026-11", help="YYYY-MM of the last monthly snapshot")
    parser.add_argument("--months", type=int, default=6, help="monthly snapshots, ending with --month")
    parser.add_argument("--price-increase", type=float, default=0.0,
                        help="added to every monthly charge of the last snapshot (feature drift)")
    parser.add_argument("--discount", action="store_true", help="add a `discount` column to customer_billing")
    parser.add_argument("--eval-fraction", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=Path("."), help="the example's root")
    args = parser.parse_args(argv)
    if args.months < 2:
        parser.error("--months must be at least 2")

    times = snapshot_times(args.month, args.months)
    s = simulate(args.customers, args.seed, args.months, args.price_increase)
    profile, billing = feature_tables(s, times, args.discount, args.seed)
    train, evaluation = entity_tables(s, times, args.seed, args.eval_fraction)

    sources, data = args.out / "feature_repo" / "data", args.out / "data"
    sources.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    for frame, path in ((profile, sources / "customer_profile.parquet"),
                        (billing, sources / "customer_billing.parquet"),
                        (train, data / "train_entities.parquet"),
                        (evaluation, data / "eval_entities.parquet")):
        write(frame, path)
    print(f"wrote {len(profile)} snapshot rows of {args.customers} customers "
          f"({times[0]:%Y-%m} to {times[-1]:%Y-%m}) to {sources}/, "
          f"{len(train)} train and {len(evaluation)} eval entities to {data}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

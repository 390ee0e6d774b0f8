"""Generate a reproducible customer-churn dataset: train and eval CSV files.

    python generate_data.py --snapshot 2026-09 --rows 12000 --seed 1
    python generate_data.py --snapshot 2026-10 --rows 15000 --seed 2 --price-increase 12 --new-plan

Columns: an id, a date, numeric and categorical features with some nulls, and the label
`churned`. The same arguments always give the same bytes.
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

CONTRACTS = ["month-to-month", "one-year", "two-year"]
PLANS = ["basic", "standard", "premium"]
PAYMENTS = ["card", "bank-transfer", "electronic-check", "mailed-check"]
REGIONS = ["north", "south", "east", "west"]
BASE_PRICE = {"basic": 25.0, "standard": 55.0, "premium": 85.0, "fiber": 70.0}


def generate(rows: int, seed: int, snapshot: str, price_increase: float, new_plan: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    year, month = (int(x) for x in snapshot.split("-"))
    end = date(year, month, 1)
    tenure_days = rng.integers(1, 6 * 365, size=rows)
    signup = [end - timedelta(days=int(d)) for d in tenure_days]
    tenure_months = (tenure_days // 30).astype(int)

    contract = rng.choice(CONTRACTS, size=rows, p=[0.55, 0.25, 0.20])
    plans = PLANS + (["fiber"] if new_plan else [])
    plan_p = [0.4, 0.35, 0.25] if not new_plan else [0.32, 0.28, 0.2, 0.2]
    plan = rng.choice(plans, size=rows, p=plan_p)
    payment = rng.choice(PAYMENTS, size=rows, p=[0.35, 0.25, 0.3, 0.1])
    region = rng.choice(REGIONS, size=rows)
    monthly = np.array([BASE_PRICE[p] for p in plan]) + rng.normal(0, 6, rows) + price_increase
    monthly = np.round(np.clip(monthly, 10, None), 2)
    total = np.round(monthly * np.maximum(tenure_months, 1) * rng.uniform(0.95, 1.05, rows), 2)
    support_calls = rng.poisson(1.2 + 0.8 * (plan == "basic"), rows)
    age = np.clip(rng.normal(45, 14, rows), 18, 90).round(0)

    logit = (
        -1.2
        + 1.4 * (contract == "month-to-month")
        - 1.0 * (contract == "two-year")
        + 0.55 * (payment == "electronic-check")
        + 0.035 * (monthly - 55)
        - 0.035 * tenure_months
        + 0.35 * support_calls
        - 0.012 * (age - 45)
        + 0.4 * (plan == "fiber")
    )
    churned = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)

    frame = pd.DataFrame({
        "customer_id": [f"C{seed:02d}{i:07d}" for i in range(rows)],
        "signup_date": pd.to_datetime(signup).strftime("%Y-%m-%d"),
        "tenure_months": tenure_months,
        "contract": contract,
        "plan": plan,
        "payment_method": payment,
        "region": region,
        "monthly_charges": monthly,
        "total_charges": total,
        "support_calls": support_calls,
        "age": age,
        "churned": churned,
    })
    # realistic gaps: total_charges missing for brand-new accounts, age often not given
    frame.loc[rng.uniform(size=rows) < 0.02, "total_charges"] = np.nan
    frame.loc[rng.uniform(size=rows) < 0.05, "age"] = np.nan
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--snapshot", default="2026-09", help="YYYY-MM of the data export")
    parser.add_argument("--price-increase", type=float, default=0.0, help="added to every monthly charge")
    parser.add_argument("--new-plan", action="store_true", help="introduce the 'fiber' plan")
    parser.add_argument("--eval-fraction", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    frame = generate(args.rows, args.seed, args.snapshot, args.price_increase, args.new_plan)
    n_eval = int(len(frame) * args.eval_fraction)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.iloc[n_eval:].to_csv(args.out / "train.csv", index=False)
    frame.iloc[:n_eval].to_csv(args.out / "eval.csv", index=False)
    print(f"wrote {len(frame) - n_eval} train and {n_eval} eval rows to {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

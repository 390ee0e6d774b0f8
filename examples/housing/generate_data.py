"""Generate a reproducible house-price dataset: train and eval CSV files, no internet needed.

    python generate_data.py --month 2026-09 --rows 4000 --seed 1
    python generate_data.py --month 2026-10 --rows 4000 --seed 2 --price-change 4 --newer-homes

Columns: an id, the sale month, numeric and categorical features (a few nulls) and the label
`price` (in thousands). The same arguments always give the same bytes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

NEIGHBORHOODS = {"center": 6.2, "riverside": 5.1, "old-town": 4.6, "suburbs": 3.4, "outskirts": 2.6}
CONDITIONS = {"poor": 0.85, "fair": 0.95, "good": 1.0, "excellent": 1.12}


def generate(rows: int, seed: int, month: str, price_change: float, newer_homes: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hood = rng.choice(list(NEIGHBORHOODS), size=rows, p=[0.12, 0.18, 0.2, 0.32, 0.18])
    condition = rng.choice(list(CONDITIONS), size=rows, p=[0.08, 0.27, 0.45, 0.2])
    area = np.round(np.clip(rng.lognormal(np.log(105), 0.35, rows), 30, 400), 1)  # m²
    rooms = np.clip(np.round(area / 28 + rng.normal(0, 0.8, rows)), 1, 10).astype(int)
    age = np.clip(rng.gamma(2.0, 14.0 if not newer_homes else 10.0, rows), 0, 120).round(0)
    distance = np.round(rng.gamma(2.5, 2.2, rows) + (hood == "outskirts") * 6, 2)  # km to the center
    garage = (rng.uniform(size=rows) < 0.25 + 0.35 * np.isin(hood, ["suburbs", "outskirts"])).astype(int)

    per_m2 = np.array([NEIGHBORHOODS[h] for h in hood]) * np.array([CONDITIONS[c] for c in condition])
    price = (
        per_m2 * area * (1.0 - 0.35 * (1 - np.exp(-age / 40)))  # older homes lose value, then level off
        + 9.0 * np.minimum(rooms, 5)
        + 18.0 * garage
        - 60.0 * np.log1p(distance / 4)
    ) * (1 + price_change / 100) + rng.normal(0, 25, rows)
    price = np.round(np.clip(price, 40, None), 1)

    frame = pd.DataFrame({
        "house_id": [f"H{seed:02d}{i:06d}" for i in range(rows)],
        "sale_month": month,
        "area_m2": area,
        "rooms": rooms,
        "age_years": age,
        "distance_km": distance,
        "garage": garage,
        "neighborhood": hood,
        "condition": condition,
        "price": price,
    })
    # sellers often leave the age of the house out
    frame.loc[rng.uniform(size=rows) < 0.04, "age_years"] = np.nan
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--month", default="2026-09", help="YYYY-MM of the sales export")
    parser.add_argument("--price-change", type=float, default=0.0, help="percent added to every price")
    parser.add_argument("--newer-homes", action="store_true", help="more new builds on the market")
    parser.add_argument("--eval-fraction", type=float, default=0.25)
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    frame = generate(args.rows, args.seed, args.month, args.price_change, args.newer_homes)
    n_eval = int(len(frame) * args.eval_fraction)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.iloc[n_eval:].to_csv(args.out / "train.csv", index=False)
    frame.iloc[:n_eval].to_csv(args.out / "eval.csv", index=False)
    print(f"wrote {len(frame) - n_eval} train and {n_eval} eval rows to {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

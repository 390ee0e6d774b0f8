"""Train the house-price model: a scikit-learn pipeline, logged to the MLflow run mlops-ci opened.

    python train.py     # trains and prints the metrics; logs nothing without MLFLOW_RUN_ID
    mlops-ci train      # mlops-ci opens the MLflow run and passes MLFLOW_RUN_ID to this script

The model contract (README.md, "The model contract"): rank 0 logs one model into the run
mlops-ci opened; `mlflow.pyfunc.load_model(...).predict(eval frame without the label)` returns
one predicted price per row.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = Path(__file__).resolve().parent
# mlflow 3.17 saves scikit-learn models with skops, which loads only the types it trusts:
# SimpleImputer keeps a numpy.dtype, the trees a sklearn Tree. Reviewed, so trusted here.
TRUSTED_TYPES = ["numpy.dtype", "sklearn.tree._tree.Tree"]


def build(features: dict, hp: dict) -> Pipeline:
    """Impute and scale the numbers, one-hot the categories; other columns are dropped."""
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), features["numeric"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), features["categorical"]),
    ])
    if hp["kind"] == "ridge":
        estimator = Ridge(alpha=hp["alpha"])
    elif hp["kind"] == "gradient_boosting":
        estimator = GradientBoostingRegressor(n_estimators=hp["n_estimators"], max_depth=hp["max_depth"],
                                              learning_rate=hp["learning_rate"], random_state=hp["seed"])
    else:
        raise SystemExit(f"params.yaml: model.kind must be ridge or gradient_boosting, not {hp['kind']!r}")
    return Pipeline([("pre", pre), ("model", estimator)])


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = pred - y
    return {"val_rmse": float(np.sqrt(np.mean(err**2))), "val_mae": float(np.mean(np.abs(err))),
            "val_r2": float(1 - np.sum(err**2) / np.sum((y - y.mean()) ** 2))}


def main() -> int:
    params = yaml.safe_load((HERE / "params.yaml").read_text())
    data, features, hp = params["data"], params["features"], params["model"]
    train = pd.read_csv(HERE / data["train"])
    evaluation = pd.read_csv(HERE / data["eval"])
    label = data["label"]

    pipe = build(features, hp).fit(train.drop(columns=[label]), train[label])
    metrics = regression_metrics(evaluation[label].to_numpy(float),
                                 pipe.predict(evaluation.drop(columns=[label])))
    print(f"{hp['kind']}: " + " ".join(f"{k} {v:.4g}" for k, v in metrics.items()), flush=True)

    # log from rank 0 only, and only when mlops-ci opened a run (plain `python train.py` logs nothing)
    if int(os.environ.get("RANK", "0")) != 0 or not os.environ.get("MLFLOW_RUN_ID"):
        return 0
    import mlflow
    import sklearn
    import skops

    with mlflow.start_run():  # resumes the run in MLFLOW_RUN_ID
        mlflow.log_params({f"model.{k}": v for k, v in hp.items()})
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            pipe,
            name="model",
            # explicit requirements: no slow inference (it would list every package installed here)
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"],
            skops_trusted_types=TRUSTED_TYPES,
        )
    result = os.environ.get("MLOPS_CI_RESULT")
    if result:  # optional: mlops-ci also finds the newest model logged to its run
        Path(result).write_text(json.dumps({"model_uri": info.model_uri, "metrics": metrics}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train the churn model on features from the store: a scikit-learn pipeline, logged to the MLflow
run mlops-ci opened.

    mlops-ci train      # writes data/train.parquet and data/eval.parquet from the feature store
                        # (churn_v1, point in time), opens the MLflow run, runs this script
    python train.py     # with those files present: trains and prints the metrics; logs nothing
                        # without MLFLOW_RUN_ID

The model contract (README.md, "The model contract"): rank 0 logs one model into the run mlops-ci
opened; `mlflow.pyfunc.load_model(...).predict(eval frame without the label)` returns P(churned)
per row (pyfunc_predict_fn="predict_proba").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = Path(__file__).resolve().parent
# mlflow 3.17 saves scikit-learn models with skops, which loads only the types it trusts:
# SimpleImputer keeps a numpy.dtype. Reviewed, so trusted here.
TRUSTED_TYPES = ["numpy.dtype"]


def build(features: dict, hp: dict) -> Pipeline:
    """Impute and scale the numbers, impute and one-hot the categories; other columns are dropped."""
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), features["numeric"]),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore")), features["categorical"]),
    ])
    return Pipeline([("pre", pre), ("model", LogisticRegression(C=hp["C"], max_iter=hp["max_iter"]))])


def load(path: Path, features: dict, label: str) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_parquet(path)
    wanted = features["numeric"] + features["categorical"]
    missing = [c for c in wanted + [label] if c not in frame.columns]
    if missing:
        raise SystemExit(f"{path.name} lacks {', '.join(missing)}: params.yaml names features the feature "
                         f"service does not serve (columns: {', '.join(frame.columns)})")
    # the entity columns are no features; mlops-ci scores the model on the eval file with them
    # (minus the label), which the ColumnTransformer ignores as it does any other column
    x = frame.drop(columns=[label, *(c for c in features.get("drop", []) if c in frame.columns)])
    return x, frame[label].to_numpy(int)


def main() -> int:
    params = yaml.safe_load((HERE / "params.yaml").read_text())
    data, features, hp = params["data"], params["features"], params["model"]
    x_train, y_train = load(HERE / data["train"], features, data["label"])
    x_eval, y_eval = load(HERE / data["eval"], features, data["label"])

    pipe = build(features, hp).fit(x_train, y_train)
    p = pipe.predict_proba(x_eval)[:, 1]
    metrics = {"val_roc_auc": float(roc_auc_score(y_eval, p)),
               "val_accuracy": float(accuracy_score(y_eval, p >= 0.5)),
               "val_log_loss": float(log_loss(y_eval, p, labels=[0, 1]))}
    scores = " ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    print(f"logistic regression on {len(x_train)} rows: {scores}", flush=True)

    # log from rank 0 only, and only when mlops-ci opened a run (plain `python train.py` logs nothing)
    if int(os.environ.get("RANK", "0")) != 0 or not os.environ.get("MLFLOW_RUN_ID"):
        return 0
    import mlflow
    import sklearn
    import skops

    with mlflow.start_run():  # resumes the run in MLFLOW_RUN_ID
        mlflow.log_params({f"model.{k}": v for k, v in hp.items()})
        mlflow.log_params({"features.numeric": ",".join(features["numeric"]),
                           "features.categorical": ",".join(features["categorical"])})
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            pipe,
            name="model",
            # a classifier is scored on P(churned), not on its 0/1 labels
            pyfunc_predict_fn="predict_proba",
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

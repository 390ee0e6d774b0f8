"""Train the churn model. Runs under torchrun (DDP, gloo on CPU, NCCL on GPU) or plain python.

    torchrun --standalone --nproc-per-node 2 train.py

With mlops-ci, the MLflow run is opened by `mlops-ci train` and resumed here on rank 0. When
MLOPS_CI_CHECKPOINT_URI is set, a checkpoint is saved after every epoch and a rerun resumes from the
newest one.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset

from mlops_ci import training
from model import Preprocessor, build

HERE = Path(__file__).resolve().parent


def auc(y: np.ndarray, p: np.ndarray) -> float:
    order = np.argsort(p)
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)) if n_pos and n_neg else float("nan")


def main() -> int:
    params = yaml.safe_load((HERE / "params.yaml").read_text())
    hp, feats, data = params["train"], params["features"], params["data"]
    dist = training.setup(seed=hp["seed"])

    train_df = pd.read_csv(HERE / data["train"])
    eval_df = pd.read_csv(HERE / data["eval"])
    pre = Preprocessor(feats["numeric"], feats["categorical"]).fit(train_df)
    x_num, x_cat = pre.transform(train_df)
    y = torch.tensor(train_df[data["label"]].to_numpy(), dtype=torch.float32)
    dataset = TensorDataset(x_num, x_cat, y)
    sampler = dist.sampler(dataset, seed=hp["seed"])
    loader = DataLoader(dataset, batch_size=hp["batch_size"], sampler=sampler, shuffle=sampler is None)

    net = build(pre, hp["hidden"], hp["embedding_dim"]).to(dist.device)
    model = DDP(net) if dist.distributed else net
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp["lr"])
    loss_fn = torch.nn.BCEWithLogitsLoss()
    e_num, e_cat = pre.transform(eval_df)
    e_y = eval_df[data["label"]].to_numpy()

    def evaluate() -> tuple[float, float]:
        net.eval()
        with torch.no_grad():
            logits = net(e_num.to(dist.device), e_cat.to(dist.device)).float().cpu()
        return float(loss_fn(logits, torch.tensor(e_y, dtype=torch.float32))), auc(e_y, torch.sigmoid(logits).numpy())

    ckpt = training.Checkpointer(dist)  # off unless MLOPS_CI_CHECKPOINT_URI is set
    step = ckpt.load_latest(model, optimizer)
    first_epoch = ckpt.epoch

    with training.tracked_run(dist):
        dist.log_params({**hp, "world_size": dist.world_size})
        for epoch in range(first_epoch, hp["epochs"]):
            if sampler is not None:
                sampler.set_epoch(epoch)
            model.train()
            total, count = 0.0, 0
            for num, cat, target in loader:
                num, cat, target = num.to(dist.device), cat.to(dist.device), target.to(dist.device)
                optimizer.zero_grad()
                with training.autocast(dist):
                    loss = loss_fn(model(num, cat), target)
                loss.backward()
                optimizer.step()
                step += 1
                total += loss.item() * len(target)
                count += len(target)
            train_loss = dist.mean(total / max(count, 1))
            val_loss, val_auc = evaluate()
            ckpt.save(step, model, optimizer, epoch=epoch + 1)  # the epoch to resume at
            dist.log_metrics({"train_loss": train_loss, "val_loss": val_loss, "val_auc": val_auc}, step=epoch)
            if dist.is_main:
                print(f"epoch {epoch + 1}/{hp['epochs']}: train_loss {train_loss:.4f} "
                      f"val_loss {val_loss:.4f} val_auc {val_auc:.4f}", flush=True)
        if first_epoch >= hp["epochs"]:  # resumed after the last epoch (e.g. logging the model failed)
            val_loss, val_auc = evaluate()

        model_uri = None
        if dist.is_main:
            model_uri = log_model(net, pre, hp, eval_df.drop(columns=[data["label"]]).head(5))
        training.finish(dist, model_uri=model_uri, metrics={"val_loss": val_loss, "val_auc": val_auc},
                        steps=step)
    return 0


def log_model(net: torch.nn.Module, pre: Preprocessor, hp: dict, sample: pd.DataFrame) -> str | None:
    """Log the pyfunc model to the active MLflow run (rank 0); None when not tracking."""
    try:
        import mlflow
    except ImportError:
        return None
    if mlflow.active_run() is None:
        return None
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # integer columns (tenure, support calls) never hold nulls in this dataset
    warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.save(net.state_dict(), tmp / "weights.pt")
        (tmp / "preprocessor.json").write_text(pre.to_json())
        (tmp / "config.json").write_text(json.dumps({"hidden": hp["hidden"], "embedding_dim": hp["embedding_dim"]}))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(HERE / "pyfunc_model.py"),
            code_paths=[str(HERE / "model.py")],
            artifacts={k: str(tmp / f) for k, f in
                       (("weights", "weights.pt"), ("preprocessor", "preprocessor.json"), ("config", "config.json"))},
            input_example=sample,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "pandas", "numpy", "mlflow"],
        )
    return info.model_uri


if __name__ == "__main__":
    raise SystemExit(main())

"""The churn model: preprocessing, a small PyTorch network, and its MLflow pyfunc wrapper.

The pyfunc wrapper is what gets logged and served (KServe's MLflow runtime, or
`mlflow models serve`): it takes the raw columns as a DataFrame and returns the churn
probability, so the evaluator and the server need nothing but this file and the artifacts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

try:  # only needed for logging and serving
    import mlflow.pyfunc

    _PythonModel = mlflow.pyfunc.PythonModel
except ImportError:  # pragma: no cover
    _PythonModel = object

UNKNOWN = "<unk>"


@dataclass
class Preprocessor:
    numeric: list[str]
    categorical: list[str]
    means: dict[str, float] = field(default_factory=dict)
    stds: dict[str, float] = field(default_factory=dict)
    vocab: dict[str, list[str]] = field(default_factory=dict)

    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        for col in self.numeric:
            values = pd.to_numeric(frame[col], errors="coerce")
            self.means[col] = float(values.mean())
            self.stds[col] = float(values.std() or 1.0)
        for col in self.categorical:
            self.vocab[col] = [UNKNOWN] + sorted(frame[col].dropna().astype(str).unique().tolist())
        return self

    def transform(self, frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        parts = []
        for col in self.numeric:
            values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
            missing = np.isnan(values)
            values = np.where(missing, self.means[col], values)
            parts += [(values - self.means[col]) / self.stds[col], missing.astype(float)]
        numeric = torch.tensor(np.stack(parts, axis=1), dtype=torch.float32)
        cats = []
        for col in self.categorical:
            index = {v: i for i, v in enumerate(self.vocab[col])}
            cats.append([index.get(str(v), 0) for v in frame[col].astype(object).where(frame[col].notna(), UNKNOWN)])
        categorical = torch.tensor(np.array(cats).T, dtype=torch.long)
        return numeric, categorical

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Preprocessor:
        return cls(**json.loads(text))


class ChurnNet(nn.Module):
    def __init__(self, n_numeric: int, vocab_sizes: list[int], hidden: int = 32, embedding_dim: int = 4) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(n, embedding_dim) for n in vocab_sizes)
        width = n_numeric + embedding_dim * len(vocab_sizes)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        embedded = [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.mlp(torch.cat([numeric, *embedded], dim=1)).squeeze(1)


def build(pre: Preprocessor, hidden: int, embedding_dim: int) -> ChurnNet:
    return ChurnNet(2 * len(pre.numeric), [len(pre.vocab[c]) for c in pre.categorical], hidden, embedding_dim)


class ChurnPyfunc(_PythonModel):
    """DataFrame of raw columns in, churn probability out."""

    def load_context(self, context) -> None:
        with open(context.artifacts["preprocessor"], encoding="utf-8") as fh:
            self.pre = Preprocessor.from_json(fh.read())
        with open(context.artifacts["config"], encoding="utf-8") as fh:
            cfg = json.load(fh)
        self.net = build(self.pre, cfg["hidden"], cfg["embedding_dim"])
        self.net.load_state_dict(torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True))
        self.net.eval()

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        numeric, categorical = self.pre.transform(model_input)
        with torch.no_grad():
            return torch.sigmoid(self.net(numeric, categorical)).numpy().astype(float)

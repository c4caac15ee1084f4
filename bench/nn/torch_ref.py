"""PyTorch reference for the deep-learning benchmark (bench/nn/run.sh).

mlp <dir>: trains the same MLP as aurum's `mlp` family on the inputs aurum encoded (train.csv,
test.csv and spec.json written by the nn_bench example): one embedding per categorical feature
(same sizes and widths), ReLU hidden layers with dropout, one logit, AdamW (eps 1e-8), the same
batch size, learning rate, weight decay and epochs, shuffled batches, initial weights PyTorch's
defaults (aurum draws the same distributions). Prints seconds per epoch, test AUC and the
single-row latency of the forward pass on an already encoded row.

cnn <csv> <split.json> <epochs>: the same CNN as aurum's `cnn` defaults (two 3x3 convolutions
of 16 and 32 channels, each with ReLU and 2x2 max pooling, a dense layer of 64 with dropout
0.25, AdamW lr 2e-3, weight decay 1e-4, batch 32) on the same split; prints held-out accuracy.
"""

import json
import os
import sys
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

torch.set_num_threads(2)
# The training seed (weights, batch order, dropout); `SEED` as for aurum's side.
SEED = int(os.environ.get("SEED", "42"))
torch.manual_seed(SEED)
np.random.seed(SEED)


class Mlp(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.embeddings = nn.ModuleList(
            nn.Embedding(e["indices"], e["dim"]) for e in spec["embeddings"]
        )
        d = spec["n_numeric"] + sum(e["dim"] for e in spec["embeddings"])
        layers = []
        for w in spec["hidden"]:
            layers += [nn.Linear(d, w), nn.ReLU(), nn.Dropout(spec["dropout"])]
            d = w
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, numeric, cats):
        parts = [numeric] + [e(cats[:, k]) for k, e in enumerate(self.embeddings)]
        return self.net(torch.cat(parts, dim=1)).squeeze(1)


def load(path, n_numeric, n_cat):
    a = np.loadtxt(path, delimiter=",", ndmin=2)
    numeric = torch.tensor(a[:, :n_numeric], dtype=torch.float32)
    cats = torch.tensor(a[:, n_numeric : n_numeric + n_cat], dtype=torch.int64)
    y = torch.tensor(a[:, -1], dtype=torch.float32)
    return numeric, cats, y


def run_mlp(d):
    spec = json.load(open(f"{d}/spec.json"))
    n_cat = len(spec["embeddings"])
    xn, xc, y = load(f"{d}/train.csv", spec["n_numeric"], n_cat)
    tn, tc, ty = load(f"{d}/test.csv", spec["n_numeric"], n_cat)
    model = Mlp(spec)
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=spec["learning_rate"],
        weight_decay=spec["weight_decay"],
        eps=1e-8,
    )
    loss_fn = nn.BCEWithLogitsLoss()
    n, bs = len(y), spec["batch_size"]
    start = time.perf_counter()
    for _ in range(spec["epochs"]):
        model.train()
        order = torch.randperm(n)
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            opt.zero_grad()
            loss = loss_fn(model(xn[idx], xc[idx]), y[idx])
            loss.backward()
            opt.step()
    per_epoch = (time.perf_counter() - start) / spec["epochs"]
    model.eval()
    with torch.no_grad():
        p = torch.sigmoid(model(tn, tc)).numpy()
        lat = []
        for i in range(5000):
            k = i % len(ty)
            t = time.perf_counter()
            torch.sigmoid(model(tn[k : k + 1], tc[k : k + 1]))
            lat.append((time.perf_counter() - t) * 1e6)
    lat.sort()
    print(
        json.dumps(
            {
                "seconds_per_epoch": per_epoch,
                "test_auc": roc_auc_score(ty.numpy(), p),
                "latency_us_p50": lat[len(lat) // 2],
                "latency_us_p99": lat[len(lat) * 99 // 100],
            }
        )
    )


def run_cnn(csv_path, split_path, epochs):
    a = np.loadtxt(csv_path, delimiter=",", skiprows=1)
    x = torch.tensor(a[:, :64] / a[:, :64].max(), dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(a[:, 64], dtype=torch.int64)
    split = json.load(open(split_path))
    tr, te = torch.tensor(split["train"]), torch.tensor(split["test"])
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(64, 10),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4, eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = tr[torch.randperm(len(tr))]
        for i in range(0, len(order), 32):
            idx = order[i : i + 32]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
    per_epoch = (time.perf_counter() - start) / epochs
    model.eval()
    with torch.no_grad():
        acc = (model(x[te]).argmax(1) == y[te]).float().mean().item()
    print(json.dumps({"seconds_per_epoch": per_epoch, "test_accuracy": acc}))


if __name__ == "__main__":
    if sys.argv[1] == "mlp":
        run_mlp(sys.argv[2])
    else:
        run_cnn(sys.argv[2], sys.argv[3], int(sys.argv[4]))

"""PyTorch reference for the recurrent forecasters' benchmark (`bench/nn/recurrent.sh`).

Reads the `prep.json` that `recurrent_bench` wrote (the seed, the working series after the log, the
scaler of the training part, the number of training windows and the settings) and trains the
same architecture on the same windows: one `nn.LSTM` layer (input 1, `hidden` units), dropout
on its last hidden state, `nn.Linear(hidden, 1)`; AdamW (lr, weight decay, eps 1e-8), batch
size, fixed epochs, MSE on the standardised (differenced) values. It then forecasts the holdout
recursively from the end of the training series and prints one JSON line: MASE on the same
scale as aurum's, seconds per epoch.
"""

import json
import sys
import time

import numpy as np
import torch
from torch import nn

torch.set_num_threads(2)
prep = json.load(open(sys.argv[1]))
torch.manual_seed(int(prep["seed"]))
L, H = prep["lookback"], prep["hidden"]
z = np.array(prep["working"], dtype=np.float64)
d = np.diff(z) if prep["difference"] else z.copy()
s = (d - prep["mean"]) / prep["scale"]
n_train = prep["training_windows"]
targets = np.arange(L, L + n_train)
X = torch.tensor(np.stack([s[t - L:t] for t in targets]), dtype=torch.float32).unsqueeze(-1)
Y = torch.tensor(s[targets], dtype=torch.float32).unsqueeze(-1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(1, H, batch_first=True)
        self.drop = nn.Dropout(prep["dropout"])
        self.head = nn.Linear(H, 1)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.head(self.drop(h[-1]))


net = Net()
opt = torch.optim.AdamW(net.parameters(), lr=prep["learning_rate"],
                        weight_decay=prep["weight_decay"], eps=1e-8)
started = time.perf_counter()
for _ in range(prep["epochs"]):
    net.train()
    perm = torch.randperm(len(X))
    for i in range(0, len(X), prep["batch_size"]):
        idx = perm[i:i + prep["batch_size"]]
        opt.zero_grad()
        loss = ((net(X[idx]) - Y[idx]) ** 2).mean()
        loss.backward()
        opt.step()
per_epoch = (time.perf_counter() - started) / prep["epochs"]

net.eval()
window = list(s[-L:])
level = z[-1]
forecast = []
with torch.no_grad():
    for _ in range(prep["h"]):
        x = torch.tensor(window[-L:], dtype=torch.float32).view(1, L, 1)
        nxt = float(net(x)[0, 0])
        value = nxt * prep["scale"] + prep["mean"]
        level = level + value if prep["difference"] else value
        forecast.append(np.exp(level) if prep["log"] else level)
        window.append(nxt)
test = np.array(prep["test"])
mase = float(np.mean(np.abs(np.array(forecast) - test)) / prep["mase_scale"])
print(json.dumps({"series": prep["series"], "torch_mase": mase,
                  "torch_seconds_per_epoch": per_epoch, "torch": torch.__version__}))

"""Trains the benchmark LightGBM model (200 trees, 20 features, 50 000 synthetic rows) and writes
the model, an MLServer model-settings.json, request bodies for both servers (OIP JSON), and for
aurum the same rows as OIP binary-tensor requests (`body_<rows>.bin`: the JSON header followed by
the raw little-endian FP32 tensor; `body_<rows>.hlen`: the JSON header's length, sent as
`Inference-Header-Content-Length`) and as raw FP32 (`rows_256.f32`, for the in-process ceiling)."""
import json
import os
import sys

import lightgbm as lgb
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(42)
n, f = 50_000, 20
X = rng.normal(size=(n, f))
logit = X[:, 0] * 1.5 - X[:, 1] + 0.5 * X[:, 2] * X[:, 3] + np.sin(X[:, 4]) - 0.3 * X[:, 5] ** 2
y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
names = [f"f{i:02d}" for i in range(f)]
ds = lgb.Dataset(X, y, feature_name=names)
booster = lgb.train({"objective": "binary", "num_leaves": 31, "learning_rate": 0.05, "verbose": -1}, ds, num_boost_round=200)
os.makedirs(f"{out}/mlserver/bench", exist_ok=True)
booster.save_model(f"{out}/model.txt")
booster.save_model(f"{out}/mlserver/bench/model.txt")
with open(f"{out}/mlserver/bench/model-settings.json", "w") as fh:
    json.dump({"name": "bench", "implementation": "mlserver_lightgbm.LightGBMModel",
               "parameters": {"uri": "./model.txt", "version": "v1"}}, fh)
with open(f"{out}/mlserver/settings.json", "w") as fh:
    json.dump({"debug": False, "metrics_endpoint": None}, fh)
for rows in (1, 256):
    data = X[:rows].astype(np.float32)
    body = {"inputs": [{"name": "input-0", "shape": [rows, f], "datatype": "FP32", "data": data.ravel().tolist()}]}
    with open(f"{out}/body_{rows}.json", "w") as fh:
        json.dump(body, fh)
    raw = data.astype("<f4").tobytes()
    header = json.dumps({"inputs": [{"name": "input-0", "shape": [rows, f], "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(raw)}}],
                         "parameters": {"binary_data_output": True}}, separators=(",", ":")).encode()
    with open(f"{out}/body_{rows}.bin", "wb") as fh:
        fh.write(header + raw)
    with open(f"{out}/body_{rows}.hlen", "w") as fh:
        fh.write(str(len(header)))
X[:256].astype("<f4").tofile(f"{out}/rows_256.f32")
# In-process cost of the model itself, for reference.
import time
row = X[:1]
t = time.perf_counter()
for _ in range(2000):
    booster.predict(row)
print(f"lightgbm in-process single-row predict: {(time.perf_counter() - t) / 2000 * 1000:.4f} ms/row")
np.save(f"{out}/X_check.npy", X[:100])
np.save(f"{out}/p_check.npy", booster.predict(X[:100]))
